"""Group membership in PostgreSQL: the ``group_membership`` table beside ``predictions``."""

from __future__ import annotations

from datetime import datetime

from prediction_log.fairness_counts import FairnessCounts
from prediction_log.groups import GroupPost, GroupReceipt, Memberships, choose
from prediction_log.labelled_bins import whole_days
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.outcomes import TABLE as OUTCOMES_TABLE
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import TABLE as LOG_TABLE
from prediction_log.postgres.store import PostgresStore

TABLE = "group_membership"
SQL_TYPES = {"request_id": "text NOT NULL", "attribute": "text NOT NULL", "group_name": "text NOT NULL",
             "recorded_at": "timestamptz NOT NULL DEFAULT now()"}
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('group_membership_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())}, "
    "PRIMARY KEY (request_id, attribute))",
]

class PostgresGroups:
    def __init__(self, log: PostgresStore) -> None:
        self.log = log
        self._schema_ready = False

    async def ensure_schema(self) -> None:
        """The table, and ``fairness_days`` with its triggers (which need the outcomes table too)."""
        await PostgresOutcomes(self.log).ensure_schema()
        async with self.log.writing() as conn:
            await apply_schema(conn, SCHEMA_SQL, TABLE, tuple(SQL_TYPES))
            await pg_fairness_days.ensure_schema(conn, LOG_TABLE, OUTCOMES_TABLE, TABLE)
        self._schema_ready = True

    async def counted(self, since: datetime, until: datetime) -> FairnessCounts:
        """The decisions of [since, until) counted per group: whole days from ``fairness_days`` (cost grows with
        days × groups × bins), the partial days at the edges counted from their rows in the database."""
        if not self._schema_ready:
            await self.ensure_schema()
        first, last = whole_days(since, until)
        assert first is not None and last is not None
        timeout = self.log.read_timeout_s
        async with self.log.reading() as conn:
            if first >= last:
                return await pg_fairness_days.counts_of_rows(conn, LOG_TABLE, OUTCOMES_TABLE, TABLE, since, until,
                                                             timeout)
            parts = [await pg_fairness_days.counts_between(conn, first, last, timeout)]
            for a, b in ((since, first), (last, until)):
                if a < b:
                    parts.append(await pg_fairness_days.counts_of_rows(conn, LOG_TABLE, OUTCOMES_TABLE, TABLE, a, b,
                                                                       timeout))
        return FairnessCounts.concat(parts)

    async def record(self, post: GroupPost) -> GroupReceipt:
        if not self._schema_ready:
            await self.ensure_schema()
        async with self.log.writing() as conn, conn.transaction():
            ids = list(dict.fromkeys(post.request_ids))
            known = {r[0] for r in await conn.fetch(
                f"SELECT request_id FROM {LOG_TABLE} WHERE request_id = ANY($1::text[])", ids)}
            existing = {(r[0], r[1]) for r in await conn.fetch(
                f"SELECT request_id, attribute FROM {TABLE} WHERE request_id = ANY($1::text[])", ids)}
            chosen, receipt = choose(post, known, existing)
            if chosen:
                await conn.execute(
                    f"INSERT INTO {TABLE} (request_id, attribute, group_name) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
                    [post.request_ids[i] for i in chosen], [post.attributes[i] for i in chosen],
                    [post.groups[i] for i in chosen])
        return receipt

    async def of(self, request_ids: list[str]) -> Memberships:
        if not self._schema_ready:
            await self.ensure_schema()
        out: Memberships = {}
        async with self.log.reading() as conn:
            for r in await conn.fetch(f"SELECT request_id, attribute, group_name FROM {TABLE} "
                                      "WHERE request_id = ANY($1::text[])", request_ids,
                                      timeout=self.log.read_timeout_s):
                out.setdefault(r[1], {})[r[0]] = r[2]
        return out
