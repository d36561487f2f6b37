"""The audit record of model changes beside the file log: ``model_changes.jsonl`` (a few entries a day: read
whole)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prediction_log.files.jsonl import JsonObjects
from prediction_log.model_changes import ModelChange


class FileModelChanges:
    """``model_changes.jsonl`` beside the file log (a few entries a day: read whole)."""

    def __init__(self, path: Path) -> None:
        self.file = JsonObjects(path)
        self._lock = asyncio.Lock()

    def _entries(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for entry in self.file.read():
            if isinstance(entry.get("id"), str) and isinstance(entry.get("at"), str):
                out.setdefault(entry["id"], entry)
            else:
                self.file.unreadable.saw(repr(entry))
        return out

    async def record(self, changes: list[ModelChange]) -> None:
        async with self._lock:
            stored = await asyncio.to_thread(self._entries)
            new = [asdict(c) for c in changes if c.id not in stored]
            if new:
                await asyncio.to_thread(self.file.append, new)

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        entries = await asyncio.to_thread(self._entries)
        return sorted(entries.values(), key=lambda e: (e["at"], e["id"]), reverse=True)[:limit]
