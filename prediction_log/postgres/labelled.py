"""``labelled_days`` in PostgreSQL: labelled decisions counted per day, kept by a statement trigger on ``outcomes``.

The trigger joins the outcomes a statement stored (its transition table: a duplicate skipped by ``ON CONFLICT
DO NOTHING`` is not in it) with their decisions, in the same transaction, so no outcome is counted twice or
missed; an outcome is only stored for a decision in the log (``outcomes.reconcile``) and never changes. It runs
with its owner's rights (the least-privilege role reads the rows and cannot change them). Outcomes stored before
the trigger existed are counted once when it is created. ``labelled_bins`` says what a row holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from prediction_log.labelled_bins import LABELLED_BINS, LabelledBins, empty
from prediction_log.postgres.ddl import apply_schema, counting_trigger

TABLE = "labelled_days"
TRIGGER = "outcomes_labelled_days"
KEY = ("day", "model_version", "probability_bin", "denied", "defaulted")
SQL_TYPES = {"day": "timestamptz NOT NULL", "model_version": "text NOT NULL", "probability_bin": "smallint NOT NULL",
             "denied": "boolean NOT NULL", "defaulted": "smallint NOT NULL", "decisions": "bigint NOT NULL",
             "probability_sum": "double precision NOT NULL", "probability_sq_sum": "double precision NOT NULL",
             "probability_min": "double precision NOT NULL", "probability_max": "double precision NOT NULL"}


def bin_sql(probability: str) -> str:
    """``labelled_bins.bin_of`` in SQL."""
    return f"least(floor({probability} * {LABELLED_BINS}), {LABELLED_BINS - 1})::smallint"


def _upsert(outcomes: str, log_table: str) -> str:
    return (f"INSERT INTO {TABLE} AS a ({', '.join(SQL_TYPES)}) "
            f"SELECT date_trunc('day', p.ts, 'UTC'), p.model_version, {bin_sql('p.probability_default')}, "
            "p.credit_decision = 'denied', o.defaulted, count(*), sum(p.probability_default), "
            "sum(p.probability_default * p.probability_default), min(p.probability_default), "
            f"max(p.probability_default) FROM {outcomes} o JOIN {log_table} p USING (request_id) "
            "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET decisions = a.decisions + excluded.decisions, "
            "probability_sum = a.probability_sum + excluded.probability_sum, "
            "probability_sq_sum = a.probability_sq_sum + excluded.probability_sq_sum, "
            "probability_min = least(a.probability_min, excluded.probability_min), "
            "probability_max = greatest(a.probability_max, excluded.probability_max)")


def schema_sql(outcomes_table: str, log_table: str) -> list[str]:
    """The DDL (``outcomes`` passes its own and the log's table names: it imports this module)."""
    return [
        "SELECT pg_advisory_xact_lock(hashtext('labelled_days_schema'))",
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {s}' for c, s in SQL_TYPES.items())}, "
        f"PRIMARY KEY ({', '.join(KEY)}))",
        *counting_trigger(TRIGGER, outcomes_table, lambda source: [_upsert(source, log_table)]),
    ]


async def ensure_schema(conn: asyncpg.Connection, outcomes_table: str, log_table: str) -> None:
    await apply_schema(conn, schema_sql(outcomes_table, log_table), TABLE, tuple(SQL_TYPES))


async def bins_between(conn: asyncpg.Connection, since: datetime | None, until: datetime | None,
                       model_version: str | None, timeout_s: float) -> LabelledBins:
    """The rows of the days that start in [since, until) (both whole days, or open)."""
    rows = await conn.fetch(
        f"SELECT {', '.join(SQL_TYPES)} FROM {TABLE} WHERE ($1::timestamptz IS NULL OR day >= $1) "
        "AND ($2::timestamptz IS NULL OR day < $2) AND ($3::text IS NULL OR model_version = $3)",
        since, until, model_version, timeout=timeout_s)
    return bins_of(rows)


def bins_of(rows: list[Any]) -> LabelledBins:
    """Rows of ``SQL_TYPES``' columns, in order, as ``LabelledBins``."""
    if not rows:
        return empty()
    columns = list(zip(*rows))
    return LabelledBins(np.array([d.replace(tzinfo=None) for d in columns[0]], dtype="datetime64[us]"),
                        np.array(columns[1], dtype=object), np.array(columns[2], np.int16),
                        np.array(columns[3], bool), np.array(columns[4], np.int8), np.array(columns[5], np.int64),
                        *(np.array(c, np.float64) for c in columns[6:]))
