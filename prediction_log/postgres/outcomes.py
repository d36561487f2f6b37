"""Outcomes in PostgreSQL: the ``outcomes`` table beside ``predictions`` (``prediction_log.outcomes``: the rule)."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime

import asyncpg
import numpy as np
import pyarrow as pa
from pyarrow import csv as pa_csv

from prediction_log.labelled_bins import LabelledBins, whole_days
from prediction_log.outcomes import Labelled, Outcomes, Receipt, Shadowed, binned, reconcile, shadowed_of
from prediction_log.postgres import labelled as pg_labelled
from prediction_log.postgres import shadowed as pg_shadowed
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.store import TABLE as LOG_TABLE
from prediction_log.postgres.store import PostgresStore
from prediction_log.shadowed_counts import ShadowedCounts

TABLE = "outcomes"
SQL_TYPES = {
    "request_id": "text PRIMARY KEY",
    "defaulted": "smallint NOT NULL CHECK (defaulted IN (0, 1))",
    "observed_at": "timestamptz NOT NULL",
    "recorded_at": "timestamptz NOT NULL DEFAULT now()",
}
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('outcomes_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())})",
]
READ_TIMEOUT_S = 30.0
"""Reads for reports join the whole window: longer than the log's write timeout (a hung write is spooled;
a slow report is only slow)."""


class PostgresOutcomes:
    """The ``outcomes`` table, beside ``predictions`` in the log's database."""

    def __init__(self, log: PostgresStore) -> None:
        self.log = log
        """Posts on the log's write pool, reports on its read pool."""
        self._schema_ready = False
        self._posting = asyncio.Lock()
        """Posts queue here, before they take a write connection: one at a time takes one, and the others never
        hold the connections decisions are written on while they wait for the advisory lock."""

    async def _ensure_schema(self, conn: asyncpg.Connection) -> None:
        if not self._schema_ready:
            await apply_schema(conn, SCHEMA_SQL, TABLE, tuple(SQL_TYPES))
            await pg_labelled.ensure_schema(conn, TABLE, LOG_TABLE)
            self._schema_ready = True

    async def ensure_schema(self) -> None:
        """Create the table now (``prediction_log.postgres.schema`` as the owner) rather than at the first use."""
        async with self.log.writing() as conn:
            await self._ensure_schema(conn)

    async def record(self, post: Outcomes) -> Receipt:
        """One transaction, serialised with other posts (a conflict cannot slip between check and insert): in this
        process by a lock taken before the connection, across processes by an advisory lock."""
        async with self._posting, self.log.writing() as conn:
            await self._ensure_schema(conn)
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('outcomes_post'))")
                ids = list(dict.fromkeys(post.request_ids))
                known = {
                    r[0]
                    for r in await conn.fetch(
                        f"SELECT request_id FROM {LOG_TABLE} WHERE request_id = ANY($1::text[])", ids
                    )
                }
                existing = {
                    r[0]: r[1]
                    for r in await conn.fetch(
                        f"SELECT request_id, defaulted FROM {TABLE} WHERE request_id = ANY($1::text[])", ids
                    )
                }
                chosen, receipt = reconcile(post, known, existing)
                if chosen:
                    await conn.execute(
                        f"INSERT INTO {TABLE} (request_id, defaulted, observed_at) "
                        "SELECT * FROM unnest($1::text[], $2::smallint[], $3::timestamptz[]) "
                        "ON CONFLICT (request_id) DO NOTHING",
                        [post.request_ids[i] for i in chosen],
                        [post.defaulted[i] for i in chosen],
                        [post.observed_at[i] for i in chosen],
                    )
        return receipt

    async def defaulted_of(self, request_ids: list[str]) -> dict[str, int]:
        """The outcome of each of ``request_ids`` that has one."""
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            rows = await conn.fetch(
                f"SELECT request_id, defaulted FROM {TABLE} WHERE request_id = ANY($1::text[])",
                request_ids,
                timeout=READ_TIMEOUT_S,
            )
        return {r[0]: int(r[1]) for r in rows}

    async def labelled(self, since: datetime | None, until: datetime | None, model_version: str | None) -> Labelled:
        """The join, filtered on the decision's time and model (a hash join: outcomes are the smaller side),
        streamed out as CSV and parsed by Arrow into columns (no Python object per row: 200k rows in ~0.1 s)."""
        query = (
            f"SELECT (extract(epoch FROM p.ts) * 1000000)::bigint AS ts_us, p.model_version, "
            f"p.probability_default, p.threshold, o.defaulted FROM {TABLE} o JOIN {LOG_TABLE} p USING (request_id) "
            "WHERE ($1::timestamptz IS NULL OR p.ts >= $1) AND ($2::timestamptz IS NULL OR p.ts < $2) "
            "AND ($3::text IS NULL OR p.model_version = $3)"
        )
        out = io.BytesIO()
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            await conn.copy_from_query(
                query, since, until, model_version, output=out, format="csv", header=True, timeout=READ_TIMEOUT_S
            )
        table = pa_csv.read_csv(
            io.BytesIO(out.getvalue()),
            convert_options=pa_csv.ConvertOptions(
                column_types={
                    "ts_us": pa.int64(),
                    "model_version": pa.string(),
                    "probability_default": pa.float64(),
                    "threshold": pa.float64(),
                    "defaulted": pa.int8(),
                }
            ),
        )
        return Labelled(
            table.column("ts_us").to_numpy().astype("datetime64[us]"),
            np.array(table.column("model_version").to_pylist(), dtype=object),
            table.column("probability_default").to_numpy(),
            table.column("threshold").to_numpy(),
            table.column("defaulted").to_numpy(),
        )

    async def for_reports(
        self, since: datetime | None, until: datetime | None, model_version: str | None
    ) -> LabelledBins:
        """The window's labelled decisions as counts: whole days from ``labelled_days`` (cost grows with days, not
        outcomes), the partial days at the window's edges from their rows."""
        first, last = whole_days(since, until)
        if first is not None and last is not None and first >= last:
            return binned(await self.labelled(since, until, model_version))
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            parts = [await pg_labelled.bins_between(conn, first, last, model_version, READ_TIMEOUT_S)]
        if since is not None and since != first:
            parts.append(binned(await self.labelled(since, first, model_version)))
        if until is not None and until != last:
            parts.append(binned(await self.labelled(last, until, model_version)))
        return LabelledBins.concat(parts)

    async def shadowed_for_reports(self, since: datetime | None, until: datetime | None) -> ShadowedCounts:
        """The window's shadowed decisions counted where they are (``pg_shadowed``), not brought here as rows."""
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            return await pg_shadowed.shadowed_counts(conn, LOG_TABLE, TABLE, since, until, READ_TIMEOUT_S)

    async def shadowed(self, since: datetime | None, until: datetime | None) -> Shadowed:
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            rows = await conn.fetch(
                "SELECT p.model_version, p.probability_default, p.prediction = 1, p.challenger_version, "
                "p.challenger_probability, p.challenger_decision = 'denied', o.defaulted "
                f"FROM {LOG_TABLE} p LEFT JOIN {TABLE} o USING (request_id) "
                "WHERE p.challenger_probability IS NOT NULL AND ($1::timestamptz IS NULL OR p.ts >= $1) "
                "AND ($2::timestamptz IS NULL OR p.ts < $2)",
                since,
                until,
                timeout=READ_TIMEOUT_S,
            )
        return shadowed_of([tuple(r) for r in rows])

    async def count(self) -> int:
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            return await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
