"""The audit record of model changes in PostgreSQL: the ``model_changes`` table beside ``predictions``."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from prediction_log.model_changes import ModelChange
from prediction_log.postgres.ddl import TableBeside

TABLE = "model_changes"
SQL_TYPES = {f.name: "text" for f in fields(ModelChange)} | {
    "id": "text PRIMARY KEY", "at": "timestamptz NOT NULL", "event": "text NOT NULL",
    "from_threshold": "double precision", "to_threshold": "double precision"}
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('model_changes_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())})",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_at ON {TABLE} (at DESC)",
]
COLUMNS = tuple(SQL_TYPES)


def _row(change: ModelChange) -> tuple[Any, ...]:
    values = asdict(change)
    values["at"] = datetime.fromisoformat(change.at)
    return tuple(values[c] for c in COLUMNS)


class PostgresModelChanges(TableBeside):
    TABLE, SCHEMA_SQL, COLUMNS = TABLE, SCHEMA_SQL, COLUMNS

    async def record(self, changes: list[ModelChange]) -> None:
        await self.ensure_schema()
        placeholders = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
        async with self.log.writing() as conn:
            await conn.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
                                   "ON CONFLICT (id) DO NOTHING", [_row(c) for c in changes])

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        await self.ensure_schema()
        async with self.log.reading() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY at DESC, id DESC LIMIT $1",
                limit,
                timeout=self.log.read_timeout_s,
            )
        return [dict(r) | {"at": r["at"].isoformat()} for r in rows]
