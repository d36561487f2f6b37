"""Admission of scoring requests at one ingress replica: a slot per request, and the body bytes held or parsed at
once, reserved as they arrive. A client that trickles a body holds only the bytes it has sent, never the length it
declared, and the body is read within ``body_timeout_s`` or the request is answered 408."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request

from deployments.http.backend import BodySlot, Overloaded


class Admission:
    """The replica's budget: ``max_requests`` slots and ``max_body_bytes`` of bodies (one body is always let in)."""

    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests, self.max_body_bytes = max_requests, max_body_bytes
        self.in_flight = 0
        self.body_bytes = 0

    def apply(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests, self.max_body_bytes = max_requests, max_body_bytes

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A request's slot, and the body bytes it reserves, given back when it ends; ``Overloaded`` when full."""
        if self.in_flight >= self.max_requests:
            raise Overloaded()
        self.in_flight += 1
        held = Slot(self)
        try:
            yield held
        finally:
            self.in_flight -= 1
            self.body_bytes -= held.body_bytes


class Slot:
    """One admitted request's share of the budget."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.body_bytes = 0

    def reserve(self, n: int) -> None:
        """Hold ``n`` more bytes of this request's body; ``Overloaded`` when other requests' bodies fill the budget."""
        a = self.admission
        if a.body_bytes > self.body_bytes and a.body_bytes + n > a.max_body_bytes:
            raise Overloaded()
        a.body_bytes += n
        self.body_bytes += n


async def read_body(request: Request, slot: BodySlot | None, timeout_s: float) -> bytes:
    """The body, its bytes reserved in ``slot`` (a scoring request's) as they arrive; 408 when it is not all there
    within ``timeout_s``."""
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                if slot is not None:
                    slot.reserve(len(chunk))
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(408, f"request body not received within {timeout_s:g} s",
                            headers={"Connection": "close"}) from None
    return b"".join(chunks)
