"""PostgreSQL store: asyncpg pool, binary COPY from Arrow blocks, idempotent on request_id, typed ``predictions`` table.

Live writes COPY straight into ``predictions`` (no staging, no per-row ``ON CONFLICT``): a fresh
block's request_ids are new, and the unique index refuses the whole COPY if any is not. Only then,
and for every spool replay, the block goes through a staging table and ``INSERT … ON CONFLICT DO
NOTHING``, so a block written twice (a write acknowledged too late, a replay) is stored once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
import orjson
import pyarrow as pa

from prediction_log.aggregates import Bucket, bucket_for, summary
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, Bins, latency_quantiles
from prediction_log.labelled_bins import LabelledBins, whole_days
from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import partitions as pg_partitions
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres.ddl import apply_schema
from prediction_log.query import LogQuery
from prediction_log.records import COLUMNS, SCHEMA, SQL_TYPES, Block, from_rows, row_values, to_pg_binary

TABLE = "predictions"
SQL_COLUMNS: tuple[str, ...] = tuple(c.lower() for c in COLUMNS)
"""Unquoted lower-case identifiers in SQL; rows map back to ``COLUMNS`` by position."""
_COLS = ", ".join(SQL_COLUMNS)
SECONDARY_INDEXES: dict[str, str] = {
    f"{TABLE}_request_id_key": f"UNIQUE INDEX IF NOT EXISTS {{name}} ON {TABLE} ({{key}})",
    f"{TABLE}_ts_idx": f"INDEX IF NOT EXISTS {{name}} ON {TABLE} (ts DESC)",
    f"{TABLE}_decision_ts_idx": f"INDEX IF NOT EXISTS {{name}} ON {TABLE} (credit_decision, ts DESC)",
}
"""Name → definition: the unique request_id (idempotent replay, conflict detection on the live COPY; with the
partition key ``ts`` on a partitioned table: a record and its replay share their ts) and the two read indexes
(/predictions, monitoring windows)."""


def schema_sql(partitioned: bool) -> list[str]:
    """The table (partitioned by month when new: ``pg_partitions``; an older plain table as it is), its columns
    and indexes."""
    create = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint GENERATED ALWAYS AS IDENTITY, ts {SQL_TYPES['ts']}, "
              f"PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts)" if partitioned else
              f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)")
    return [
        "SELECT pg_advisory_xact_lock(hashtext('predictions_schema'))",
        create,
        *([f"CREATE TABLE IF NOT EXISTS {TABLE}_default PARTITION OF {TABLE} DEFAULT"] if partitioned else []),
        *[f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {c.lower()} {SQL_TYPES[c]}" for c in COLUMNS],
        *[f"CREATE {definition.format(name=name, key='request_id, ts' if partitioned else 'request_id')}"
          for name, definition in SECONDARY_INDEXES.items()],
    ]


_STAGE = f"CREATE TEMP TABLE {TABLE}_stage ON COMMIT DELETE ROWS AS SELECT {_COLS} FROM {TABLE} WITH NO DATA"
_MERGE = f"INSERT INTO {TABLE} ({_COLS}) SELECT {_COLS} FROM {TABLE}_stage ON CONFLICT DO NOTHING"
_INSERT_ONE = (f"INSERT INTO {TABLE} ({_COLS}) VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
               "ON CONFLICT DO NOTHING")
"""No conflict target: the unique index is on request_id, or (request_id, ts) on a partitioned table."""

DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""Errors that refuse rows (not the connection): retried row by row."""


async def ensure_schema(conn: asyncpg.Connection, timeout_s: float | None = None) -> None:
    """Create or migrate the table, its partitions, indexes and aggregates; safe to run concurrently and
    repeatedly (a role that may not create them checks the columns and writes into what exists)."""
    partitioned = await pg_partitions.is_partitioned(conn, TABLE) is not False
    await apply_schema(conn, schema_sql(partitioned), TABLE, SQL_COLUMNS, timeout_s)
    if partitioned:
        await pg_partitions.ensure_partitions(conn, TABLE, datetime.now(UTC), timeout_s=timeout_s)
    await pg_aggregates.ensure_schema(conn, TABLE, timeout_s)
    await pg_histograms.ensure_schema(conn, TABLE, timeout_s)
    await pg_scored.ensure_schema(conn, TABLE, timeout_s)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python objects (reads and the row-by-row fallback); the staging table."""
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda v: b"\x01" + orjson.dumps(v), decoder=lambda b: orjson.loads(b[1:]))
    await conn.execute(_STAGE)


def _row_dict(record: asyncpg.Record) -> dict[str, Any]:
    row = dict(zip(COLUMNS, tuple(record)))
    row["ts"] = row["ts"].isoformat()
    return row


class PostgresStore:
    """Writes and reads on separate pools: a slow or crowded read (``/performance`` over months, six
    dashboards at once) can never take the connection a write needs; each pool's ``acquire`` times out."""

    kind = "postgresql"
    spools_on_failure = True
    data_errors: tuple[type[BaseException], ...] = DATA_ERRORS

    def __init__(self, pool: asyncpg.Pool, timeout_s: float | None = 30.0, read_pool: asyncpg.Pool | None = None,
                 read_timeout_s: float = 30.0) -> None:
        self.pool = pool
        """Writes (COPY, merges, outcomes posts)."""
        self.read_pool = read_pool or pool
        """Reads (log pages, counts, monitoring windows, performance joins)."""
        self.timeout_s = timeout_s
        self.read_timeout_s = read_timeout_s
        self._counts_histograms: bool | None = None
        """Whether live COPYs count their own histograms (asked at the first write)."""

    @classmethod
    async def connect(cls, dsn: str, timeout: float = 5.0, statement_timeout_s: float | None = 30.0,
                      write_connections: int = 4, read_connections: int = 2,
                      read_timeout_s: float = 30.0) -> PostgresStore:
        """Open the two pools (schema ensured, staging table per write connection); every statement times out
        (``statement_timeout_s`` None: writes and the schema do not, for the owner's migration of a big log)."""
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await ensure_schema(conn, statement_timeout_s)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=write_connections, init=_init_connection,
                                         timeout=timeout, command_timeout=statement_timeout_s)
        try:
            read_pool = await asyncpg.create_pool(dsn, min_size=1, max_size=read_connections, init=_init_connection,
                                                  timeout=timeout, command_timeout=read_timeout_s)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, statement_timeout_s, read_pool, read_timeout_s)

    def writing(self) -> Any:
        """A write connection; waiting for one counts against the write timeout (then the block is spooled)."""
        return self.pool.acquire(timeout=self.timeout_s)

    def reading(self) -> Any:
        """A read connection, or ``asyncio.TimeoutError`` (a 503 for that read) when all are busy that long."""
        return self.read_pool.acquire(timeout=self.read_timeout_s)

    async def insert(self, block: Block) -> int:
        """Binary COPY into the table, a big block's histograms counted here in the same transaction (where this
        role may: ``pg_histograms``); if any request_id is already there, merge through staging instead."""
        data = to_pg_binary(block)
        try:
            async with self.writing() as conn:
                if not await self._copy_counted(conn, block, data):
                    await self._copy(conn, data)
            return len(block)
        except asyncpg.UniqueViolationError:
            return await self._merge(data)

    async def _copy_counted(self, conn: asyncpg.Connection, block: Block, data: bytes) -> bool:
        """The COPY with the block's histograms counted here, in one transaction; False (nothing stored) when the
        trigger counts it instead: a small block, or a role that may not add counts (or no longer may)."""
        if self._counts_histograms is None:
            self._counts_histograms = await pg_histograms.may_add(conn, self.timeout_s)
        if not self._counts_histograms or len(block) < pg_histograms.WRITER_COUNTS_FROM \
                or not pg_histograms.live(block):
            return False
        try:
            async with conn.transaction():
                registered = await pg_histograms.counting(conn, self.timeout_s)
                await self._copy(conn, data)
                await pg_histograms.add_block(conn, block, registered, self.timeout_s)
            return True
        except (asyncpg.UndefinedFunctionError, asyncpg.InsufficientPrivilegeError):
            self._counts_histograms = False   # taken away since: the transaction stored nothing
            return False
        except asyncpg.InvalidParameterValueError:   # counts the function refuses (clocks apart): the trigger counts
            return False

    async def _copy(self, conn: asyncpg.Connection, data: bytes) -> None:
        await conn.copy_to_table(TABLE, source=io.BytesIO(data), columns=SQL_COLUMNS, format="binary",
                                 timeout=self.timeout_s)

    async def replay(self, block: Block) -> int:
        """Spooled records: merged, duplicates (by request_id) skipped."""
        return await self._merge(to_pg_binary(block))

    async def _merge(self, data: bytes) -> int:
        async with self.writing() as conn, conn.transaction():
            await conn.copy_to_table(f"{TABLE}_stage", source=io.BytesIO(data), columns=SQL_COLUMNS,
                                     format="binary", timeout=self.timeout_s)
            status = await conn.execute(_MERGE, timeout=self.timeout_s)
        return int(status.split()[-1])

    def replay_done(self) -> None:
        return None

    def set_write_timeout(self, seconds: float) -> None:
        self.timeout_s = seconds

    async def insert_one(self, block: Block) -> int:
        """A one-row block on its own (``INSERT … ON CONFLICT``), after a COPY refused a row of it."""
        values = tuple(orjson.loads(v) if c == "explanation" and v is not None else v
                       for c, v in zip(COLUMNS, row_values(block, 0)))
        async with self.writing() as conn:
            status = await conn.execute(_INSERT_ONE, *values, timeout=self.timeout_s)
        return int(status.split()[-1])

    async def query(self, q: LogQuery) -> list[dict]:
        """Newest-first page of records matching ``q``."""
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (("ts >= ${}", q.since), ("ts < ${}", q.until), ("credit_decision = ${}", q.decision)):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        if (after := q.after()) is not None:
            args.extend(after)
            where.append(f"(ts, request_id) < (${len(args) - 1}, ${len(args)})")
        sql = (f"SELECT {_COLS} FROM {TABLE} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY ts DESC, request_id DESC LIMIT {q.limit} OFFSET {q.offset}")
        async with self.reading() as conn:
            rows = await conn.fetch(sql, *args, timeout=self.read_timeout_s)
        return [_row_dict(r) for r in rows]

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The record of ``request_id`` (the unique index)."""
        async with self.reading() as conn:
            row = await conn.fetchrow(f"SELECT {_COLS} FROM {TABLE} WHERE request_id = $1", request_id,
                                      timeout=self.read_timeout_s)
        return None if row is None else _row_dict(row)

    async def records_between(self, since: datetime | None, until: datetime | None,
                              columns: Sequence[str] | None = None) -> Block:
        """Every record with ``since <= ts < until``, oldest first (monitoring windows); only ``columns`` if given."""
        names = list(columns or COLUMNS)
        sql = (f"SELECT {', '.join(SQL_COLUMNS[COLUMNS.index(c)] for c in names)} FROM {TABLE} "
               "WHERE ($1::timestamptz IS NULL OR ts >= $1) AND ($2::timestamptz IS NULL OR ts < $2) ORDER BY ts, id")
        async with self.reading() as conn:
            rows = await conn.fetch(sql, since, until, timeout=self.read_timeout_s)
        if columns is None:
            return from_rows(dict(zip(COLUMNS, tuple(r))) for r in rows)
        return pa.RecordBatch.from_arrays([pa.array([r[i] for r in rows], SCHEMA.field(c).type)
                                           for i, c in enumerate(names)], names=names)

    async def sample_between(self, since: datetime | None, until: datetime | None, rows: int,
                             seed: int = 0) -> tuple[Block, int]:
        """Bernoulli sample of the window (each record kept with probability rows / window size, seeded), read
        through the time index; the window's size from the same index."""
        window = "($1::timestamptz IS NULL OR ts >= $1) AND ($2::timestamptz IS NULL OR ts < $2)"
        async with self.reading() as conn:
            total = int(await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE {window}", since, until,
                                            timeout=self.read_timeout_s))
            fraction = min(1.0, rows / total) if total else 1.0
            async with conn.transaction():
                await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000)
                records = await conn.fetch(f"SELECT {_COLS} FROM {TABLE} WHERE {window} AND random() < $3 "
                                           f"ORDER BY ts, id LIMIT $4", since, until, fraction, rows,
                                           timeout=self.read_timeout_s)
        return from_rows(dict(zip(COLUMNS, tuple(r))) for r in records), total

    async def count(self) -> int:
        """From the hourly aggregates (exact: kept in the inserts' transactions), not ``count(*)`` over the rows."""
        async with self.reading() as conn:
            return await pg_aggregates.total(conn, self.read_timeout_s)

    async def summary(self, since: datetime | None, until: datetime | None,
                      bucket: Bucket | None = None) -> dict[str, Any]:
        """``aggregates.summary`` of the window, from the aggregate rows (cost: buckets, not decisions), and the
        latency quantiles of its whole hours."""
        bucket = bucket or bucket_for(since, until)
        async with self.reading() as conn:
            rows = await pg_aggregates.rows_between(conn, since, until, bucket, self.read_timeout_s)
            latency = await pg_histograms.counts_between(conn, LATENCY, since, until, self.read_timeout_s)
        return {**summary(rows, bucket), "latency_ms_quantiles": latency_quantiles(latency[LATENCY_VARIABLE])}

    async def scored(self, since: datetime | None, until: datetime | None,
                     model_version: str | None = None) -> LabelledBins:
        """The window's decisions per day, version, probability bin and decision: whole days from ``scored_days``
        (cost grows with days, not decisions), the partial days at its edges from their rows."""
        first, last = whole_days(since, until)
        if first is not None and last is not None and first >= last:
            return await self._scored_rows(since, until, model_version)
        async with self.reading() as conn:
            parts = [await pg_scored.bins_between(conn, first, last, model_version, self.read_timeout_s)]
        if since is not None and first is not None and since != first:
            parts.append(await self._scored_rows(since, first, model_version))
        if until is not None and last is not None and until != last:
            parts.append(await self._scored_rows(last, until, model_version))
        return LabelledBins.concat(parts)

    async def _scored_rows(self, since: datetime | None, until: datetime | None,
                           model_version: str | None) -> LabelledBins:
        async with self.reading() as conn:
            return await pg_scored.bins_of_rows(conn, TABLE, since, until, model_version, self.read_timeout_s)

    async def histograms(self, bins: Bins, since: datetime | None,
                         until: datetime | None) -> dict[str, np.ndarray] | None:
        """The window's counts in ``bins`` (its whole hours) when the log has counted every decision of it into
        them; else None, and ``bins`` registered if they were not (the hours after this one will be counted)."""
        async with self.reading() as conn:
            covered = await pg_histograms.covers(conn, bins, since, self.read_timeout_s)
            if covered:
                return await pg_histograms.counts_between(conn, bins, since, until, self.read_timeout_s)
        if covered is None:
            async with self.writing() as conn:
                await pg_histograms.register(conn, bins, self.read_timeout_s)
        return None

    async def close(self) -> None:
        await self.pool.close()
        if self.read_pool is not self.pool:
            await self.read_pool.close()
