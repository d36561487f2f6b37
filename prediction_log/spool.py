"""Local append-only spool for records that could not reach the database yet.

Writers append JSONL with fsync to ``<dir>/<name>.jsonl``. Replay claims files by
renaming them (``.replaying``), so new appends go to a fresh file meanwhile; a claimed
file is deleted only after its records are stored. Claimed files left by a crash are
picked up again on the next replay.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prediction_log.records import Record, from_json_line, to_json_lines


class Spool:
    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.path = directory / f"{name}.jsonl"
        directory.mkdir(parents=True, exist_ok=True)

    def append_sync(self, records: list[Record]) -> None:
        """Durably append records (fsync before returning)."""
        with self.path.open("ab") as out:
            out.write(to_json_lines(records))
            out.flush()
            os.fsync(out.fileno())

    async def append(self, records: list[Record]) -> None:
        await asyncio.to_thread(self.append_sync, records)

    def pending_files(self) -> list[Path]:
        """Every spool file in the directory (this writer's, other replicas', claimed ones)."""
        return sorted(p for p in self.directory.iterdir() if p.suffix in (".jsonl", ".replaying"))

    def record_count(self) -> int:
        total = 0
        for path in self.pending_files():
            with path.open(encoding="utf-8") as lines:
                total += sum(1 for line in lines if line.strip())
        return total

    def claim(self) -> list[Path]:
        """Rename every unclaimed spool file for replay; returns all claimed files."""
        for path in self.directory.glob("*.jsonl"):
            path.rename(path.with_name(f"{path.stem}.{time.time_ns()}.replaying"))
        return sorted(self.directory.glob("*.replaying"))

    @staticmethod
    def read_chunks(path: Path, size: int) -> Iterator[list[Record]]:
        chunk: list[Record] = []
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    try:
                        chunk.append(from_json_line(line))
                    except ValueError:
                        continue  # a torn last line from a crash mid-append: nothing was acknowledged for it
                    if len(chunk) >= size:
                        yield chunk
                        chunk = []
        if chunk:
            yield chunk
