"""Local spool for records that could not reach the store yet: sealed files, a quota, counts without reading.

Every ``append`` writes one new file: ``<name>.<time_ns>.<records>.jsonl`` is written under a
temporary name, fsync'd, renamed and the directory fsync'd, so a file is visible only once it is
complete and nobody ever appends to a visible file. Replay claims files by renaming them to
``.replaying`` and deletes a claimed file only after its records are stored; claimed files left by
a crash are picked up on the next replay. The record count is in each file's name, so counting the
spool is a directory listing, never a read; the quota is checked against the files' sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from core.private_files import open_private, private_dir
from prediction_log.files.jsonl import from_json_lines, to_json_lines
from prediction_log.files.lines import complete_lines
from prediction_log.records import Block

STALE_TEMPORARY_S = 300
"""A ``.tmp`` spool file this old was left by a killed writer (a live append takes well under a second)."""


class SpoolFull(OSError):
    """The spool's quota (or the disk) has no room for these records."""


class Spool:
    def __init__(self, directory: Path, name: str, quota_bytes: int | None = None) -> None:
        self.directory = directory
        self.name = name
        self.quota_bytes = quota_bytes
        private_dir(directory)

    def _files(self, *suffixes: str) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.suffix in suffixes)

    def size_bytes(self) -> int:
        total = 0
        for path in self._files(".jsonl", ".replaying"):
            with contextlib.suppress(FileNotFoundError):   # replayed meanwhile
                total += path.stat().st_size
        return total

    def append_sync(self, block: Block) -> None:
        """Durably add the records (file and directory fsync'd) or raise ``SpoolFull``/``OSError``."""
        data = to_json_lines(block)
        if self.quota_bytes is not None and self.size_bytes() + len(data) > self.quota_bytes:
            raise SpoolFull(f"spool quota of {self.quota_bytes} bytes reached in {self.directory}")
        final = self.directory / f"{self.name}.{time.time_ns()}.{len(block)}.jsonl"
        temporary = final.with_suffix(".tmp")
        try:
            with open_private(temporary, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            temporary.rename(final)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def append(self, block: Block) -> None:
        await asyncio.to_thread(self.append_sync, block)

    def pending_files(self) -> list[Path]:
        """Every sealed or claimed spool file in the directory (this writer's and other replicas')."""
        return self._files(".jsonl", ".replaying")

    def record_count(self) -> int:
        """Records waiting, from the file names (no file is read)."""
        total = 0
        for path in self.pending_files():
            parts = path.name.split(".")
            total += int(parts[-2]) if len(parts) >= 4 and parts[-2].isdigit() else 0
        return total

    def claim(self) -> list[Path]:
        """Rename every sealed spool file for replay; returns all claimed files (sealed files are never appended to).
        Temporary files a killed writer left (never sealed, so never acknowledged) are removed."""
        for path in self._files(".tmp"):
            try:
                if time.time() - path.stat().st_mtime > STALE_TEMPORARY_S:
                    path.unlink()
            except FileNotFoundError:
                pass
        for path in self._files(".jsonl"):
            path.rename(path.with_suffix(".replaying"))
        return self._files(".replaying")

    @staticmethod
    def read_chunks(path: Path, size: int) -> Iterator[Block]:
        """The file's records in blocks of at most ``size`` (a torn last line, never acknowledged, is skipped)."""
        lines: list[str] = []
        for line in complete_lines(path):
            lines.append(line)
            if len(lines) >= size:
                yield from_json_lines(lines)
                lines = []
        if lines:
            yield from_json_lines(lines)
