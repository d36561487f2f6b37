"""An ingress replica's admission: body bytes are reserved as they arrive (a trickling client holds what it has
sent, not what it declared) and a body not all received within its deadline is a 408."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException, Request

from deployments.http.admission import Admission, read_body
from deployments.http.backend import Overloaded


def _request(chunks: list[bytes], pause_s: float) -> Request:
    """A request whose body arrives in ``chunks``, ``pause_s`` apart (declaring 8 MiB, like the attack)."""
    queue = list(chunks)

    async def receive() -> dict:
        await asyncio.sleep(pause_s)
        body = queue.pop(0) if queue else b""
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    scope = {"type": "http", "method": "POST", "path": "/predict/batch",
             "headers": [(b"content-length", b"8388608"), (b"content-type", b"application/json")]}
    return Request(scope, receive)


def test_bytes_are_reserved_as_they_arrive_and_given_back() -> None:
    admission = Admission(max_requests=10, max_body_bytes=1 << 20)

    async def scenario() -> None:
        with admission.slot() as slot:
            body = await read_body(_request([b"[", b" " * 1000, b"]"], 0), slot, timeout_s=5)
            assert body == b"[" + b" " * 1000 + b"]"
            assert admission.body_bytes == slot.body_bytes == 1002   # what arrived, not the declared 8 MiB
        assert admission.body_bytes == 0 and admission.in_flight == 0

    asyncio.run(scenario())


def test_other_bodies_filling_the_budget_overload_but_one_body_is_always_let_in() -> None:
    admission = Admission(max_requests=10, max_body_bytes=1 << 20)
    with admission.slot() as big:
        big.reserve(2 << 20)   # alone: let in, whatever its size
        with admission.slot() as small, pytest.raises(Overloaded):
            small.reserve(1)
    with admission.slot() as first, admission.slot() as second:
        first.reserve(1 << 19)
        second.reserve(1 << 19)   # exactly the budget
        with pytest.raises(Overloaded):
            second.reserve(1)
    assert admission.body_bytes == 0


def test_slots_past_max_requests_are_overloaded() -> None:
    admission = Admission(max_requests=1, max_body_bytes=1 << 20)
    with admission.slot(), pytest.raises(Overloaded), admission.slot():
        pass
    with admission.slot():   # given back
        pass


def test_a_trickled_body_is_408_at_its_deadline() -> None:
    admission = Admission(max_requests=10, max_body_bytes=1 << 20)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with admission.slot() as slot, pytest.raises(HTTPException) as refused:
            await read_body(_request([b" "] * 1000, 0.05), slot, timeout_s=0.3)
        assert refused.value.status_code == 408 and "0.3 s" in refused.value.detail
        return loop.time() - started

    assert asyncio.run(scenario()) < 2   # at the deadline, not after the 1,000 chunks (50 s)
    assert admission.body_bytes == 0
