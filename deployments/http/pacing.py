"""Slow answers to clients that keep sending what is rejected, so they cannot take the cores from the others.

A rejected request (invalid body, wrong key) has already cost its parse. Clients that send such requests in a
loop wait for each answer before sending the next, so the only lever that costs the server nothing is *when*
they get the answer. Rejections are answered at ``rejections_per_s`` a second per ingress replica (burst: one
second's worth): past the burst, each waits for its turn in that schedule (a generic cell rate algorithm), and at
least ``rejection_delay_s`` — an ``asyncio`` sleep, no CPU. However many keyless clients loop, the rejections a
replica answers, and so the parses they send next, stay at about ``rejections_per_s`` a second; each client waits
longer the more of them there are. At most ``max_delayed_rejections`` wait at once (each holds its request),
beyond that they are answered at once. Requests carrying a known API key are never delayed: a keyed client is
accountable, and a delay would only slow its fixes. Ray's HAProxy does not forward the client's address, so the
budget is shared by all keyless clients of a replica rather than kept per client.
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
    """The schedule and the bounded wait; ``on_pace`` (a metric) is told how each rejection was paced."""

    def __init__(self, per_s: float, delay_s: float, max_delayed: int,
                 on_pace: Callable[[Pace], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock, self._on_pace = clock, on_pace
        self.waiting = 0
        self._due = -math.inf
        """When the next rejection is due in the schedule (each answered one moves it ``1 / per_s`` on)."""
        self.apply(per_s, delay_s, max_delayed)

    def apply(self, per_s: float, delay_s: float, max_delayed: int) -> None:
        """New bounds (an edited ``user_config``); the schedule goes on from where it is."""
        self.per_s, self.delay_s, self.max_delayed = per_s, delay_s, max_delayed
        self._burst_s = max(per_s, 1.0) / per_s   # a second's worth of rejections answered at once

    def _turn(self) -> float:
        """Seconds until this rejection's turn (0: within the burst); the schedule moved on by one."""
        now = self._clock()
        due = max(self._due, now - self._burst_s)
        self._due = due + 1 / self.per_s
        return max(0.0, self._due - now)

    async def pace(self) -> Pace:
        """Wait as this rejection's pace says, then say which it was."""
        turn = self._turn()
        if turn <= 0:
            outcome: Pace = "free"
        elif self.waiting >= self.max_delayed or self.delay_s <= 0:
            self._due -= 1 / self.per_s   # answered now: it holds no place in the schedule
            outcome = "crowded"
        else:
            outcome = "delayed"
            self.waiting += 1
            try:
                await asyncio.sleep(max(turn, self.delay_s))
            finally:
                self.waiting -= 1
        if self._on_pace is not None:
            self._on_pace(outcome)
        return outcome
