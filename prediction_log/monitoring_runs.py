"""Where the server's own monitoring runs are kept (``deployments.monitoring_run``): a history to chart and audit.

A run is one JSON object with an ``id`` and an ``at``; a few a day. PostgreSQL table ``monitoring_runs``
(``run`` as jsonb) beside ``predictions``, or ``DATA_DIR/monitoring_runs.jsonl`` beside the file log.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from prediction_log.appender import LineAppender
from prediction_log.files.lines import complete_lines
from prediction_log.postgres.ddl import TableBeside

TABLE = "monitoring_runs"
FILE_NAME = "monitoring_runs.jsonl"
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


class FileMonitoringRuns:
    """``monitoring_runs.jsonl`` (a few runs a day: read whole)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._appender = LineAppender(path)

    async def record(self, run: dict[str, Any]) -> None:
        await asyncio.to_thread(self._appender.append, orjson.dumps(run) + b"\n")

    def _runs(self) -> list[dict[str, Any]]:
        runs = []
        for line in complete_lines(self.path):
            try:
                runs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return runs

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        runs = await asyncio.to_thread(self._runs)
        return sorted(runs, key=lambda r: (r["at"], r["id"]), reverse=True)[:limit]


MonitoringRunStore = PostgresMonitoringRuns | FileMonitoringRuns
