"""Slow answers to clients that keep sending what is rejected, so they cannot take the cores from the others.

A rejected request (invalid body, wrong key) has already cost its parse. Clients that send such requests in a
loop wait for each answer before sending the next, so the only lever that costs the server nothing is *when*
they get the answer: past ``rejections_per_s`` rejections a second (a token bucket per ingress replica, burst
one second's worth), each further rejection is answered after ``rejection_delay_s`` — an ``asyncio`` sleep, no
CPU. At most ``max_delayed_rejections`` wait at once (each holds its request), beyond that they are answered at
once. Requests carrying a known API key are never delayed: a keyed client is accountable, and a delay would only
slow its fixes. Ray's HAProxy does not forward the client's address, so the budget is shared by all keyless
clients of a replica rather than kept per client.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Literal

Pace = Literal["free", "delayed", "crowded"]
"""``free``: within the budget, answered now; ``delayed``: answered after the delay; ``crowded``: over the budget
but ``max_delayed_rejections`` already wait, answered now."""


class RejectionPacer:
    """The token bucket and the bounded wait; ``on_pace`` (a metric) is told how each rejection was paced."""

    def __init__(self, per_s: float, delay_s: float, max_delayed: int,
                 on_pace: Callable[[Pace], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock, self._on_pace = clock, on_pace
        self.waiting = 0
        self._tokens, self._last = math.inf, clock()   # full: ``apply`` cuts it to the burst
        self.apply(per_s, delay_s, max_delayed)

    def apply(self, per_s: float, delay_s: float, max_delayed: int) -> None:
        """New bounds (an edited ``user_config``); the bucket keeps what it holds, up to the new burst."""
        self.per_s, self.delay_s, self.max_delayed = per_s, delay_s, max_delayed
        self._burst = max(per_s, 1.0)
        self._tokens = min(self._tokens, self._burst)

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def pace(self) -> Pace:
        """Wait as this rejection's pace says, then say which it was."""
        if self._take():
            outcome: Pace = "free"
        elif self.waiting >= self.max_delayed or self.delay_s <= 0:
            outcome = "crowded"
        else:
            outcome = "delayed"
            self.waiting += 1
            try:
                await asyncio.sleep(self.delay_s)
            finally:
                self.waiting -= 1
        if self._on_pace is not None:
            self._on_pace(outcome)
        return outcome
