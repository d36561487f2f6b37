"""The server's monitoring runs in PostgreSQL: the ``monitoring_runs`` table (``run`` as jsonb)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from prediction_log.postgres.ddl import TableBeside

TABLE = "monitoring_runs"
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('monitoring_runs_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id text PRIMARY KEY, at timestamptz NOT NULL, run jsonb NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_at ON {TABLE} (at DESC)",
]


class PostgresMonitoringRuns(TableBeside):
    TABLE, SCHEMA_SQL, COLUMNS = TABLE, SCHEMA_SQL, ("id", "at", "run")

    async def record(self, run: dict[str, Any]) -> None:
        await self.ensure_schema()
        async with self.log.writing() as conn:
            await conn.execute(f"INSERT INTO {TABLE} (id, at, run) VALUES ($1, $2, $3::jsonb) "
                               "ON CONFLICT (id) DO NOTHING", run["id"], datetime.fromisoformat(run["at"]),
                               orjson.dumps(run).decode())

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        await self.ensure_schema()
        async with self.log.reading() as conn:
            rows = await conn.fetch(f"SELECT run FROM {TABLE} ORDER BY at DESC, id DESC LIMIT $1", limit,
                                    timeout=self.log.read_timeout_s)
        return [orjson.loads(r["run"]) for r in rows]
