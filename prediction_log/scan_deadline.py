"""A deadline for scans of the file log, set by the read that asked for them: a scan running on a read thread
after its request has timed out stops at its next check instead of reading the rest of the log (a thread cannot
be cancelled from outside). Scheduled work (monitoring runs, replays) sets none and runs to the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("file_log_scan_deadline", default=None)


class ScanTimeout(TimeoutError):
    """The read that asked for this scan has run past its ``read_timeout_s``."""


@contextmanager
def scans_within(seconds: float) -> Iterator[None]:
    """Scans started in this context (threads included, when the context is copied there) stop after ``seconds``."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def check() -> None:
    """Raise ``ScanTimeout`` if the current context's deadline has passed."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise ScanTimeout("the read ran past read_timeout_s; its scan of the file log stopped")
