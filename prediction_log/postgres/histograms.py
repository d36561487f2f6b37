"""The histograms in PostgreSQL (``histograms`` says what they hold), counted in the same transaction as the rows,
so a replay never counts twice. A live COPY of a big block (``WRITER_COUNTS_FROM``) is counted by the log writer
with NumPy (``counting`` before the COPY, ``add_block`` after it), so PostgreSQL only upserts a few hundred groups;
every other insert (a small block, a merge of a replay or of a re-sent block, a row on its own, SQL) by a statement
trigger like the decision aggregates' (``pg_aggregates``), from the rows the statement stored. A writer that counts
its block sets ``COUNTED_BY_WRITER`` for its transaction and the trigger skips that insert.

``histogram_bins`` names each registered set of edges per variable; the trigger counts every stored decision into
every registered set, with ``width_bucket`` (the bin numbering of ``core.psi.bin_counts``). A set registered
while the server runs covers the hours after the one it was registered in; ``LATENCY`` is registered with the
tables and counts the rows already in the log once, when the trigger is created.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prediction_log.aggregates import window_start
from prediction_log.histograms import DRIFT_VARIABLES, LATENCY, LATENCY_VARIABLE, Bins
from prediction_log.postgres.ddl import apply_schema, counting_trigger
from prediction_log.records import Block

BINS_TABLE = "histogram_bins"
TABLE = "histogram_hours"
TRIGGER = "predictions_histograms"
SQL_TYPES = {"bucket": "timestamptz NOT NULL", "bins_id": "text NOT NULL", "variable": "text NOT NULL",
             "model_version": "text NOT NULL", "bin": "smallint NOT NULL", "decisions": "bigint NOT NULL"}
KEY = ("bucket", "bins_id", "variable", "model_version", "bin")
_KEY = ", ".join(KEY)
_COLUMNS = ", ".join(SQL_TYPES)
COUNTED_BY_WRITER = "credit.histograms_counted"
"""Set to ``on`` for its transaction by a writer that counts its own block: the trigger skips that insert."""
WRITER_COUNTS_FROM = 600
"""Blocks of at least this many decisions are counted by the writer; below, the trigger's one statement costs less
than the writer's transaction, NumPy and upsert (measured 2026-12-02: equal at 500–700 rows; 40 rows 4.3 vs 6.4 ms a
COPY, 1,000 rows 19.9 vs 18.0 ms)."""
ADD = "histograms_add"
"""The function a writer adds its counts with (owner's rights, positive counts only): the app's role may add counts
as it may add decisions, but never rewrite or delete them."""
ADD_SIGNATURE = f"{ADD}(timestamptz[], text[], text[], text[], smallint[], bigint[])"
_UPSERT_TAIL = (f"ORDER BY 1, 2, 3, 4, 5 ON CONFLICT ({_KEY}) "
                "DO UPDATE SET decisions = a.decisions + excluded.decisions")
"""Groups upserted in key order, so concurrent writers take row locks in the same order."""
VARIABLES: tuple[str, ...] = (*DRIFT_VARIABLES, LATENCY_VARIABLE)
"""What a registered set may count (log columns)."""
EDGES_OK = "histogram_edges_ok"
MAX_BIN_SETS = 32
"""Sets of bins the bins table holds at most (a baseline's set per model version in use is a handful)."""
ADD_HOURS_BACK = 2
ADD_MAX_DECISIONS = 100_000
"""What ``ADD`` accepts: hours from ``ADD_HOURS_BACK`` before the database's now to one after, and at most this many
decisions per group (a live block holds at most 10,000 decisions), so no role can pre-fill hours with counts that
would make every later upsert overflow."""
_BUCKET = "date_bin('1 hour', s.ts, timestamptz '2000-01-01 00:00+00')"


def _counted(source: str, variable: str) -> str:
    """One variable's decisions per hour, bins set, model version and bin."""
    value = f"s.{variable.lower()}::float8"
    return (f"SELECT {_BUCKET} AS bucket, b.bins_id, b.variable, s.model_version, "
            f"width_bucket({value}, b.edges)::smallint AS bin, count(*) AS n FROM {source} s "
            f"JOIN {BINS_TABLE} b ON b.variable = '{variable}' WHERE {value} IS NOT NULL GROUP BY 1, 2, 3, 4, 5")


def _upsert(source: str) -> str:
    """Each variable grouped in its own scan of the stored rows (one ``UNION ALL``), then only the few hundred
    groups sorted for the upsert. Per COPY of 1,000 rows the counting takes ~6 ms this way, ~9 ms when the twelve
    values of a row were unfolded into one grouping (``LATERAL VALUES``), ~22 ms when all 12,000 were sorted."""
    counted = " UNION ALL ".join(_counted(source, v) for v in VARIABLES)
    return (f"IF coalesce(current_setting('{COUNTED_BY_WRITER}', true), '') <> 'on' THEN "
            f"WITH counted AS MATERIALIZED ({counted}) "
            f"INSERT INTO {TABLE} AS a ({_COLUMNS}) SELECT * FROM counted {_UPSERT_TAIL}; END IF")


def schema_sql(log_table: str) -> list[str]:
    """The DDL, for the trigger on ``log_table``; ``LATENCY`` registered before the trigger counts the log."""
    return [
        "SELECT pg_advisory_xact_lock(hashtext('decision_histograms_schema'))",
        f"CREATE TABLE IF NOT EXISTS {BINS_TABLE} (bins_id text NOT NULL, variable text NOT NULL, "
        "edges double precision[] NOT NULL, registered_at timestamptz NOT NULL DEFAULT clock_timestamp(), "
        "PRIMARY KEY (bins_id, variable))",
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {s}' for c, s in SQL_TYPES.items())}, "
        f"PRIMARY KEY ({_KEY}))",
        f"INSERT INTO {BINS_TABLE} (bins_id, variable, edges, registered_at) VALUES ('{LATENCY.id}', "
        f"'{LATENCY_VARIABLE}', ARRAY{list(LATENCY.edges[LATENCY_VARIABLE])}::float8[], '-infinity') "
        "ON CONFLICT DO NOTHING",
        *counting_trigger(TRIGGER, log_table, lambda source: [_upsert(source)]),
        *_bins_checked(),
        f"""CREATE OR REPLACE FUNCTION {ADD_SIGNATURE} RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM unnest($1, $2, $3, $4, $5, $6) AS c({_COLUMNS})
             LEFT JOIN {BINS_TABLE} b ON b.bins_id = c.bins_id AND b.variable = c.variable
             WHERE b.bins_id IS NULL OR c.bucket IS NULL OR c.bin IS NULL OR c.decisions IS NULL
                OR c.bucket < now() - interval '{ADD_HOURS_BACK} hours' OR c.bucket > now() + interval '1 hour'
                OR c.bin NOT BETWEEN 0 AND cardinality(b.edges) OR c.decisions > {ADD_MAX_DECISIONS}
                OR c.model_version IS NULL OR length(c.model_version) > 200) THEN
    RAISE EXCEPTION '{ADD}: counts no live block can have' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO {TABLE} AS a ({_COLUMNS})
  SELECT * FROM unnest($1, $2, $3, $4, $5, $6) AS c({_COLUMNS}) WHERE c.decisions > 0 {_UPSERT_TAIL};
END $$""",
        f"REVOKE EXECUTE ON FUNCTION {ADD_SIGNATURE} FROM PUBLIC",
    ]


def _bins_checked() -> list[str]:
    """What the app's role may register (it holds INSERT on the bins table to register a baseline's sets): edges the
    trigger can count with (sorted, distinct, no NULL or NaN), a known variable, at most ``MAX_BIN_SETS`` sets (each
    one is counted by every insert). Rows registered before the check are left as they are (``NOT VALID``)."""
    variables = ", ".join(f"'{v}'" for v in VARIABLES)
    return [
        f"""CREATE OR REPLACE FUNCTION {EDGES_OK}(edges float8[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT edges IS NOT NULL AND cardinality(edges) BETWEEN 1 AND 1000 AND array_position(edges, NULL) IS NULL
     AND NOT 'NaN'::float8 = ANY(edges) AND edges = ARRAY(SELECT DISTINCT e FROM unnest(edges) e ORDER BY e) $$""",
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{BINS_TABLE}_valid') THEN
    ALTER TABLE {BINS_TABLE} ADD CONSTRAINT {BINS_TABLE}_valid CHECK ({EDGES_OK}(edges) AND variable IN ({variables})
      AND length(bins_id) <= 64) NOT VALID;
  END IF;
END $$""",
        f"""CREATE OR REPLACE FUNCTION {BINS_TABLE}_bounded() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {BINS_TABLE} WHERE bins_id = NEW.bins_id)
     AND (SELECT count(DISTINCT bins_id) FROM {BINS_TABLE}) >= {MAX_BIN_SETS} THEN
    RAISE EXCEPTION '{BINS_TABLE}: at most {MAX_BIN_SETS} sets of bins' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN NEW;
END $$""",
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{BINS_TABLE}_bounded') THEN
    CREATE TRIGGER {BINS_TABLE}_bounded BEFORE INSERT ON {BINS_TABLE} FOR EACH ROW
      EXECUTE FUNCTION {BINS_TABLE}_bounded();
  END IF;
END $$""",
    ]


async def ensure_schema(conn: asyncpg.Connection, log_table: str, timeout_s: float | None = None) -> None:
    """Tables, function and trigger (after the log's table); idempotent, safe to run concurrently."""
    await apply_schema(conn, schema_sql(log_table), TABLE, tuple(SQL_TYPES), timeout_s)


def stop_counting_sql(log_table: str) -> list[str]:
    """What stops the counting (the benchmarks' writes without it): the trigger, and the writer's function (a
    writer that finds it gone leaves its blocks to the trigger); ``ensure_schema`` makes both again."""
    return [f"DROP TRIGGER IF EXISTS {TRIGGER} ON {log_table}", f"DROP FUNCTION IF EXISTS {ADD_SIGNATURE}"]


async def may_add(conn: asyncpg.Connection, timeout_s: float | None) -> bool:
    """Whether this role may add a block's counts (``ADD``); where not (a schema set up by an earlier version's
    owner), the trigger counts every insert."""
    return bool(await conn.fetchval(f"SELECT coalesce(has_function_privilege(to_regprocedure('{ADD_SIGNATURE}'), "
                                    "'EXECUTE'), false)", timeout=timeout_s))


Registered = list[tuple[str, str, np.ndarray]]
"""(bins_id, variable, edges) of every set registered."""


async def counting(conn: asyncpg.Connection, timeout_s: float | None) -> Registered:
    """In a writer's transaction, before its COPY: the sets to count the block into, read in the same transaction
    as the trigger would; the trigger told to skip this transaction's inserts."""
    rows = await conn.fetch(f"SELECT bins_id, variable, edges FROM set_config('{COUNTED_BY_WRITER}', 'on', true), "
                            f"{BINS_TABLE}", timeout=timeout_s)
    return [(bins_id, variable, np.asarray(edges, dtype=np.float64)) for bins_id, variable, edges in rows]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_US = 3_600_000_000


def block_counts(block: Block, registered: Registered) -> tuple[list, ...]:
    """The block's decisions per hour, set, variable, model version and bin, as ``ADD``'s six arrays: the trigger's
    counts (``width_bucket`` numbers bins as ``searchsorted(side="right")``; hours from 2000-01-01 UTC, which is
    whole hours from the epoch)."""
    ts = block.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    versions = pc.dictionary_encode(block.column("model_version"))
    names = versions.dictionary.to_pylist()
    keys, group = np.unique(ts // _HOUR_US * len(names) + versions.indices.to_numpy(zero_copy_only=False),
                            return_inverse=True)
    buckets = [_EPOCH + timedelta(hours=int(k) // len(names)) for k in keys]
    of_group = [names[int(k) % len(names)] for k in keys]
    columns: tuple[list, ...] = ([], [], [], [], [], [])
    for bins_id, variable, edges in registered:
        if variable not in VARIABLES:
            continue
        column = block.column(variable)
        values, groups = column.to_numpy(zero_copy_only=False).astype(np.float64), group
        if column.null_count:
            valid = np.asarray(column.is_valid())
            values, groups = values[valid], group[valid]
        width = len(edges) + 1
        cells = np.bincount(groups * width + np.searchsorted(edges, values, side="right"),
                            minlength=len(keys) * width)
        filled = np.flatnonzero(cells)
        for part, values_of in zip(columns, ([buckets[g] for g in filled // width], [bins_id] * len(filled),
                                            [variable] * len(filled), [of_group[g] for g in filled // width],
                                            (filled % width).tolist(), cells[filled].tolist())):
            part.extend(values_of)
    return columns


async def add_block(conn: asyncpg.Connection, block: Block, registered: Registered, timeout_s: float | None) -> None:
    """After the COPY of ``block``, in its transaction: its counts added (``counting`` came first)."""
    columns = block_counts(block, registered)
    if columns[0]:
        await conn.execute(f"SELECT {ADD}($1, $2, $3, $4, $5, $6)", *columns, timeout=timeout_s)


async def register(conn: asyncpg.Connection, bins: Bins, timeout_s: float) -> None:
    """Count the log's next decisions into ``bins`` too (idempotent)."""
    async with conn.transaction():
        for variable, edges in bins.edges.items():
            await conn.execute(f"INSERT INTO {BINS_TABLE} (bins_id, variable, edges) VALUES ($1, $2, $3) "
                               "ON CONFLICT DO NOTHING", bins.id, variable, list(edges), timeout=timeout_s)


async def covers(conn: asyncpg.Connection, bins: Bins, since: datetime | None, timeout_s: float) -> bool | None:
    """None: ``bins`` not registered; else whether every hour from ``since``'s on is counted."""
    return await conn.fetchval(
        f"SELECT bool_and(coalesce($2::timestamptz, '-infinity') >= date_trunc('hour', registered_at, 'UTC') "
        f"+ interval '1 hour') FROM {BINS_TABLE} WHERE bins_id = $1 HAVING count(*) = $3",
        bins.id, window_start(since, "hour"), len(bins.edges), timeout=timeout_s)


async def counts_between(conn: asyncpg.Connection, bins: Bins, since: datetime | None, until: datetime | None,
                         timeout_s: float) -> dict[str, np.ndarray]:
    """Each variable's counts over the hours from ``since``'s to ``until`` (whole hours)."""
    counts = {name: np.zeros(bins.bins(name), dtype=np.int64) for name in bins.edges}
    rows = await conn.fetch(
        f"SELECT variable, bin, sum(decisions) FROM {TABLE} WHERE bins_id = $1 "
        "AND ($2::timestamptz IS NULL OR bucket >= $2) AND ($3::timestamptz IS NULL OR bucket < $3) "
        "GROUP BY 1, 2", bins.id, window_start(since, "hour"), until, timeout=timeout_s)
    for variable, index, n in rows:
        counts[variable][index] = n
    return counts


def live(block: Block) -> bool:
    """Whether ``ADD`` takes the block's hours: decided within the last hour (a live COPY; older blocks, held while
    the database was away, are counted by the trigger)."""
    ts = pc.min_max(block.column("ts").cast(pa.timestamp("us", tz="UTC")))
    now = datetime.now(UTC)
    earliest, latest = ts["min"].as_py(), ts["max"].as_py()
    return earliest is not None and now - timedelta(hours=ADD_HOURS_BACK - 1) <= earliest and latest <= now \
        + timedelta(minutes=30)
