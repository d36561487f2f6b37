"""One way to wait for a condition in tests and tools (as Ray's ``wait_for_condition``): poll, sleep, fail with what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a condition: what is waited for will never happen (the server exited): stop at once."""


def wait_until(condition: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.2) -> T:
    """Call ``condition`` until it returns something truthy (returned); exceptions count as not yet.

    ``timeout_s`` is a generous bound for a loaded CI VM, not a performance target: measured times go to
    test-artifacts/, speed is asserted only by benchmarks."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except GiveUp:
            raise
        except Exception as exc:   # not ready yet (connection refused, 503, ...)
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}"
                               + (f" (last error: {last!r})" if last else ""))
        time.sleep(interval_s)
