"""``scored_days`` in PostgreSQL: every decision counted per (day, model version, probability bin, decision), kept by a
statement trigger on the log's inserts, so estimated performance (``models.estimated``) over months reads days ×
bins, not decisions.

Like the aggregates (``pg_aggregates``), the trigger reads the rows each statement stored (a replayed duplicate is
not among them), in the same transaction; a log that had rows before the trigger existed is counted once when it is
created. A row is ``labelled_bins``' with ``defaulted`` -1 (no outcome asked for).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from prediction_log.labelled_bins import LabelledBins
from prediction_log.postgres.ddl import apply_schema, counting_trigger
from prediction_log.postgres.labelled import bin_sql, bins_of

TABLE = "scored_days"
TRIGGER = "predictions_scored_days"
KEY = ("day", "model_version", "probability_bin", "denied")
SQL_TYPES = {"day": "timestamptz NOT NULL", "model_version": "text NOT NULL", "probability_bin": "smallint NOT NULL",
             "denied": "boolean NOT NULL", "decisions": "bigint NOT NULL",
             "probability_sum": "double precision NOT NULL", "probability_sq_sum": "double precision NOT NULL",
             "probability_min": "double precision NOT NULL", "probability_max": "double precision NOT NULL"}


def _upsert(source: str) -> str:
    return (f"INSERT INTO {TABLE} AS a ({', '.join(SQL_TYPES)}) "
            f"SELECT date_trunc('day', ts, 'UTC'), model_version, {bin_sql('probability_default')}, "
            "credit_decision = 'denied', count(*), sum(probability_default), "
            "sum(probability_default * probability_default), min(probability_default), max(probability_default) "
            f"FROM {source} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET decisions = a.decisions + excluded.decisions, "
            "probability_sum = a.probability_sum + excluded.probability_sum, "
            "probability_sq_sum = a.probability_sq_sum + excluded.probability_sq_sum, "
            "probability_min = least(a.probability_min, excluded.probability_min), "
            "probability_max = greatest(a.probability_max, excluded.probability_max)")


def schema_sql(log_table: str) -> list[str]:
    return [
        "SELECT pg_advisory_xact_lock(hashtext('scored_days_schema'))",
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {s}' for c, s in SQL_TYPES.items())}, "
        f"PRIMARY KEY ({', '.join(KEY)}))",
        *counting_trigger(TRIGGER, log_table, lambda source: [_upsert(source)]),
    ]


async def ensure_schema(conn: asyncpg.Connection, log_table: str, timeout_s: float | None = None) -> None:
    await apply_schema(conn, schema_sql(log_table), TABLE, tuple(SQL_TYPES), timeout_s)


def stop_counting_sql(log_table: str) -> list[str]:
    """What stops the counting (the benchmarks' writes without it); ``ensure_schema`` makes it again."""
    return [f"DROP TRIGGER IF EXISTS {TRIGGER} ON {log_table}"]


async def bins_of_rows(conn: asyncpg.Connection, log_table: str, since: datetime | None, until: datetime | None,
                       model_version: str | None, timeout_s: float) -> LabelledBins:
    """The same counts made from the decisions with ``since <= ts < until`` (the partial days at a window's edges),
    in the database: only the counts cross into Python."""
    rows = await conn.fetch(
        f"SELECT date_trunc('day', ts, 'UTC'), model_version, {bin_sql('probability_default')}, "
        "credit_decision = 'denied', -1::smallint, count(*), sum(probability_default), "
        "sum(probability_default * probability_default), min(probability_default), max(probability_default) "
        f"FROM {log_table} WHERE ($1::timestamptz IS NULL OR ts >= $1) AND ($2::timestamptz IS NULL OR ts < $2) "
        "AND ($3::text IS NULL OR model_version = $3) GROUP BY 1, 2, 3, 4",
        since, until, model_version, timeout=timeout_s)
    return bins_of(rows)


async def bins_between(conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                       model_version: str | None, timeout_s: float) -> LabelledBins:
    """The rows of the days that start in [since, until) (whole days, or open)."""
    columns = [c if c != "decisions" else "-1::smallint, decisions" for c in SQL_TYPES]
    rows = await conn.fetch(
        f"SELECT {', '.join(columns)} FROM {TABLE} WHERE ($1::timestamptz IS NULL OR day >= $1) "
        "AND ($2::timestamptz IS NULL OR day < $2) AND ($3::text IS NULL OR model_version = $3)",
        since, until, model_version, timeout=timeout_s)
    return bins_of(rows)
