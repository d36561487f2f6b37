"""The audit record of model changes: every model a scorer replica started with, switched to, or refused.

A lender must be able to say which model and threshold decided on any day and who changed it. Each
scorer replica appends one entry per event (``started``, ``applied``, ``refused``): from which version and
threshold to which, when, on which host, as which OS user, and the operator's ``change_note`` from the
user_config. Entries carry an id, so a delivery retried after a failure is stored once. PostgreSQL table
``model_changes`` beside ``predictions``, or ``DATA_DIR/model_changes.jsonl`` beside the file log.
"""

from __future__ import annotations

import asyncio
import getpass
import math
import socket
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import orjson

from prediction_log.appender import LineAppender
from prediction_log.files.lines import complete_lines
from prediction_log.postgres.ddl import TableBeside

TABLE = "model_changes"
Event = Literal["started", "applied", "refused"]
MAX_LISTED = 1_000
"""Entries one read returns (newest first)."""


@dataclass(frozen=True)
class ModelChange:
    """One entry; ``from_*`` is what answered before (None at a replica's start), ``to_*`` what answers after
    (for ``refused``: what was asked for, while ``from_*`` kept answering)."""

    id: str
    at: str                     # ISO 8601, UTC
    event: Event
    deployment: str             # Scorer or Challenger
    replica: str
    host: str
    os_user: str
    from_version: str | None
    from_threshold: float | None
    to_version: str | None
    to_threshold: float | None
    reason: str | None          # why it was refused
    note: str | None            # the user_config's change_note


def _text(value: Any, limit: int) -> str | None:
    """Bounded text either store takes: NUL (PostgreSQL text refuses it) and lone surrogates (not UTF-8) replaced."""
    if value is None:
        return None
    text = str(value)[:limit].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _number(value: Any) -> float | None:
    """A threshold as stored: a refused change may have asked for "abc" or NaN (its reason says so)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def model_change(event: Event, deployment: str, replica: str, before: tuple[Any, Any] | None,
                 after: tuple[Any, Any] | None, reason: str | None = None, note: Any = None) -> ModelChange:
    """An entry made now, in this process: its host and OS user are those of the replica that applied it (the
    control plane takes a change only from a holder of the server user's token, on loopback). What a refused
    change asked for is untrusted: kept as bounded text and finite numbers, so the entry always stores."""
    (from_version, from_threshold), (to_version, to_threshold) = before or (None, None), after or (None, None)
    return ModelChange(uuid.uuid4().hex, datetime.now(timezone.utc).isoformat(), event, deployment, replica,
                       socket.gethostname(), getpass.getuser(), _text(from_version, 200), _number(from_threshold),
                       _text(to_version, 200), _number(to_threshold), _text(reason, 2_000), _text(note, 500))


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
            rows = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY at DESC, id DESC LIMIT $1", limit,
                                    timeout=self.log.read_timeout_s)
        return [dict(r) | {"at": r["at"].isoformat()} for r in rows]


class FileModelChanges:
    """``model_changes.jsonl`` beside the file log (a few entries a day: read whole)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._appender = LineAppender(path)
        self._lock = asyncio.Lock()

    def _entries(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for line in complete_lines(self.path):
            try:
                entry = orjson.loads(line)
                out.setdefault(entry["id"], entry)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return out

    async def record(self, changes: list[ModelChange]) -> None:
        async with self._lock:
            stored = await asyncio.to_thread(self._entries)
            new = [asdict(c) for c in changes if c.id not in stored]
            if new:
                await asyncio.to_thread(self._appender.append, b"".join(orjson.dumps(x) + b"\n" for x in new))

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        entries = await asyncio.to_thread(self._entries)
        return sorted(entries.values(), key=lambda e: (e["at"], e["id"]), reverse=True)[:limit]


ModelChangeStore = FileModelChanges | PostgresModelChanges
