"""Reading an append-only JSONL file cheaply: newest lines first, and line counts by increment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prediction_log import scan_deadline

BLOCK = 1 << 20
CHECK_EVERY = 1 << 14
"""Lines between two looks at the scan's deadline (``scan_deadline``): a look costs as much as reading a line."""


def lines_backwards(path: Path, block: int = BLOCK) -> Iterator[bytes]:
    """The file's complete (newline-terminated) non-empty lines, last first, reading ``block`` bytes
    at a time from the end. Bytes after the last newline belong to an append still in progress."""
    if not path.exists():
        return
    with path.open("rb") as f:
        position = f.seek(0, 2)
        tail = b""
        first = True
        while position > 0:
            scan_deadline.check()
            step = min(block, position)
            position -= step
            f.seek(position)
            chunk = f.read(step) + tail
            parts = chunk.split(b"\n")
            if first:
                parts[-1], first = b"", False   # unterminated: not a line yet
            tail = parts[0]          # may be cut: completed by the next (earlier) block
            for line in reversed(parts[1:]):
                if line.strip():
                    yield line
        if tail.strip():
            yield tail


def complete_lines(path: Path) -> Iterator[str]:
    """The file's newline-terminated non-empty lines, first to last (an append in progress is left out)."""
    if not path.exists():
        return
    scan_deadline.check()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if number % CHECK_EVERY == 0:
                scan_deadline.check()
            if line.endswith("\n") and line.strip():
                yield line


def ends_mid_line(path: Path) -> bool:
    """Whether the file's last byte is not a newline (an append cut short by a crash, or in progress)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"


class LineCounter:
    """Counts lines of a growing file, reading only the bytes appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._count = 0
        self._inode = 0

    def count(self) -> int:
        """Newline-terminated lines in the file now."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        size = stat.st_size
        if size < self._offset or stat.st_ino != self._inode:   # replaced or truncated: start over
            self._offset = self._count = 0
            self._inode = stat.st_ino
        if size > self._offset:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                while self._offset < size:
                    chunk = f.read(min(BLOCK, size - self._offset))
                    if not chunk:
                        break
                    self._count += chunk.count(b"\n")
                    self._offset += len(chunk)
        return self._count
