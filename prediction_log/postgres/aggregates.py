"""The aggregate tables in PostgreSQL, kept by a statement trigger on the log's inserts (``aggregates`` says what
a row holds).

The trigger reads the statement's transition table: the rows the COPY, the merge or the single insert
actually stored (a replayed duplicate skipped by ``ON CONFLICT DO NOTHING`` is not in it), in the same
transaction as the rows. So the aggregates never count a decision twice or miss one, whichever path wrote
it; rows are upserted in key order, so concurrent writers lock them in one order and cannot deadlock. The
trigger runs with its owner's rights: the server's least-privilege role reads the aggregates and cannot
change them. A
log that had rows before the trigger existed is counted once, when the trigger is created (under a lock
that holds writers back for that moment).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from prediction_log.aggregates import KEY, PROBABILITY_BINS, AggregateRow, Bucket, window_start
from prediction_log.postgres.ddl import apply_schema, counting_trigger

TABLES: dict[Bucket, str] = {"minute": "decision_minutes", "hour": "decision_hours"}
TRIGGER = "predictions_aggregate"
SQL_TYPES = {"bucket": "timestamptz NOT NULL", "model_version": "text NOT NULL", "endpoint": "text NOT NULL",
             "credit_decision": "text NOT NULL", "probability_bin": "smallint NOT NULL",
             "decisions": "bigint NOT NULL", "latency_ms_sum": "double precision NOT NULL",
             "latency_ms_max": "real NOT NULL"}
_KEY = ", ".join(KEY)


def _upsert(bucket: Bucket, source: str) -> str:
    table = TABLES[bucket]
    return (f"INSERT INTO {table} AS a ({', '.join(SQL_TYPES)}) "
            f"SELECT date_trunc('{bucket}', ts, 'UTC'), model_version, endpoint, credit_decision, "
            f"least(floor(probability_default * {PROBABILITY_BINS}), {PROBABILITY_BINS - 1})::smallint, "
            f"count(*), sum(latency_ms), max(latency_ms) FROM {source} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 "
            f"ON CONFLICT ({_KEY}) DO UPDATE SET decisions = a.decisions + excluded.decisions, "
            "latency_ms_sum = a.latency_ms_sum + excluded.latency_ms_sum, "
            "latency_ms_max = greatest(a.latency_ms_max, excluded.latency_ms_max)")


def schema_sql(log_table: str) -> list[str]:
    """The DDL, for the trigger on ``log_table`` (``postgres_store.TABLE``: that module imports this one)."""
    return [
        "SELECT pg_advisory_xact_lock(hashtext('decision_aggregates_schema'))",
        *[
            f"CREATE TABLE IF NOT EXISTS {t} ({', '.join(f'{c} {s}' for c, s in SQL_TYPES.items())}, "
            f"PRIMARY KEY ({_KEY}))"
            for t in TABLES.values()
        ],
        *counting_trigger(TRIGGER, log_table, lambda source: [_upsert("minute", source), _upsert("hour", source)]),
    ]


async def ensure_schema(conn: asyncpg.Connection, log_table: str, timeout_s: float | None = None) -> None:
    """Tables, function and trigger (after the log's table); idempotent, safe to run concurrently."""
    await apply_schema(conn, schema_sql(log_table), TABLES["hour"], tuple(SQL_TYPES), timeout_s)


def stop_counting_sql(log_table: str) -> list[str]:
    """What stops the counting (the benchmarks' writes without it); ``ensure_schema`` makes it again."""
    return [f"DROP TRIGGER IF EXISTS {TRIGGER} ON {log_table}"]


async def rows_between(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None, bucket: Bucket, timeout_s: float
) -> list[AggregateRow]:
    """The aggregate rows of the buckets that start in [``window_start(since)``, until)."""
    records = await conn.fetch(
        f"SELECT {', '.join(SQL_TYPES)} FROM {TABLES[bucket]} WHERE ($1::timestamptz IS NULL OR bucket >= $1) "
        "AND ($2::timestamptz IS NULL OR bucket < $2) ORDER BY bucket",
        window_start(since, bucket),
        until,
        timeout=timeout_s,
    )
    return [AggregateRow(*r) for r in records]


async def total(conn: asyncpg.Connection, timeout_s: float) -> int:
    """Every decision in the log, from the hourly rows."""
    return int(await conn.fetchval(f"SELECT coalesce(sum(decisions), 0) FROM {TABLES['hour']}", timeout=timeout_s))
