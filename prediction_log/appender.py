"""Appending whole lines to a JSONL file, or nothing: the write path of the file log, outcomes and rejects."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from core.private_files import PRIVATE_FILE_MODE
from prediction_log.files.lines import BLOCK, ends_mid_line

logger = logging.getLogger(__name__)


class LineAppender:
    """Appends with fsync. An append that fails (ENOSPC, EIO, a failed fsync) is cut back to where it
    started, so a retry neither fuses into a torn line nor writes a record twice; a tail torn by a
    crash (never acknowledged, so re-sent by whoever sent it) is cut off before the next append.
    The file is created 0600: it holds personal data."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._torn_tail: bool | None = None
        """None until an append looks at the file's last byte."""

    def append(self, data: bytes) -> None:
        fd = self._open_locked()
        try:
            if self._torn_tail is None:
                self._torn_tail = ends_mid_line(self.path)
            if self._torn_tail:
                self._cut_torn_tail(fd)
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                except OSError:
                    self._torn_tail = True   # cut at the next append
                raise
        finally:
            os.close(fd)   # and the lock with it

    def _open_locked(self) -> int:
        """The file at the path, open for append under an exclusive ``flock``. A retention run renames a
        file away and locks it before archiving it: an append that finds its file renamed once it holds
        the lock goes to a new file at the path instead, never into the archived one."""
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                held, named = os.fstat(fd), os.stat(self.path)
                if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)
            self._torn_tail = None   # another file now

    def _cut_torn_tail(self, fd: int) -> None:
        size = os.lseek(fd, 0, os.SEEK_END)
        with self.path.open("rb") as f:   # the last newline is within the last block (a line is far shorter)
            f.seek(max(0, size - BLOCK))
            tail = f.read()
        keep = size - len(tail) + tail.rfind(b"\n") + 1
        logger.warning("%s: cutting %d bytes of an append cut short (never acknowledged, so re-sent)",
                       self.path, size - keep)
        os.ftruncate(fd, keep)
        os.fsync(fd)
        self._torn_tail = False
