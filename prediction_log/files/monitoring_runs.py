"""The server's monitoring runs beside the file log: ``monitoring_runs.jsonl`` (a few a day: read whole)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prediction_log.files.jsonl import JsonObjects


class FileMonitoringRuns:
    """``monitoring_runs.jsonl`` (a few runs a day: read whole)."""

    def __init__(self, path: Path) -> None:
        self.file = JsonObjects(path)

    async def record(self, run: dict[str, Any]) -> None:
        await asyncio.to_thread(self.file.append, [run])

    def _runs(self) -> list[dict[str, Any]]:
        runs = []
        for run in self.file.read():
            if isinstance(run.get("at"), str) and isinstance(run.get("id"), str):
                runs.append(run)
            else:
                self.file.unreadable.saw(repr(run))
        return runs

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        runs = await asyncio.to_thread(self._runs)
        return sorted(runs, key=lambda r: (r["at"], r["id"]), reverse=True)[:limit]
