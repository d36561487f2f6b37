"""Rejections past the budget wait, bounded; keyed clients and valid requests never do (deployments.http.pacing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.features import EXAMPLE_APPLICANT
from deployments.http.pacing import Pace, RejectionPacer
from loadtest.bench_hostile import HOSTILE_BODY
from tests.support.in_process import InProcessBackend, serving

KEY = "pacing-test-key-0123456789"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_then_delay_then_crowded() -> None:
    clock, seen = _Clock(), []
    pacer = RejectionPacer(per_s=2, delay_s=0.05, max_delayed=1, on_pace=seen.append, clock=clock)

    async def run() -> None:
        assert [await pacer.pace(), await pacer.pace()] == ["free", "free"]   # a second's worth of burst
        assert set(await asyncio.gather(pacer.pace(), pacer.pace())) == {"delayed", "crowded"}
        clock.now += 0.5   # the delayed one took the schedule's next place: one more place only after a second
        assert await pacer.pace() == "delayed"
        clock.now += 1.5
        assert await pacer.pace() == "free"

    asyncio.run(run())
    assert seen[:2] == ["free", "free"] and sorted(seen[2:4]) == ["crowded", "delayed"]
    assert seen[4:] == ["delayed", "free"]
    assert pacer.waiting == 0


def test_however_many_wait_they_are_answered_at_the_budgets_rate() -> None:
    """200 keyless clients once got most answers at once ("crowded") and the parses they sent next took the cores:
    now they wait their turn, and the answers, so the next parses, come at ``per_s`` a second."""
    pacer = RejectionPacer(per_s=50, delay_s=0.001, max_delayed=1_000)

    async def run() -> tuple[list[Pace], float]:
        started = asyncio.get_running_loop().time()
        paces = await asyncio.gather(*(pacer.pace() for _ in range(150)))
        return list(paces), asyncio.get_running_loop().time() - started

    paces, took = asyncio.run(run())
    assert paces.count("free") == 50 and paces.count("delayed") == 100 and "crowded" not in paces
    assert took >= 100 / 50 * 0.95   # the last of the 100 waited for its turn, two seconds on


def test_new_bounds_apply_in_place() -> None:
    clock = _Clock()
    pacer = RejectionPacer(per_s=100, delay_s=1, max_delayed=8, clock=clock)
    pacer.apply(per_s=1, delay_s=0, max_delayed=8)   # the bucket is cut to the new burst
    assert asyncio.run(pacer.pace()) == "free"
    assert asyncio.run(pacer.pace()) == "crowded"    # no delay configured: answered at once


@pytest.fixture()
def paced(tmp_path: Path) -> Iterator[tuple[TestClient, list[Pace]]]:
    seen: list[Pace] = []
    backend = InProcessBackend(tmp_path, KEY, rejections=RejectionPacer(per_s=1, delay_s=0.01, max_delayed=4,
                                                                         on_pace=seen.append))
    with serving(backend) as client:
        yield client, seen


def test_keyless_rejections_past_the_budget_wait_and_stay_bounded(paced: tuple[TestClient, list[Pace]]) -> None:
    client, seen = paced
    for _ in range(3):
        answer = client.post("/predict/batch", content=HOSTILE_BODY, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and len(answer.content) < 64 << 10
        assert answer.json()["detail"][-1]["type"] == "too_many_errors"
    assert seen == ["free", "delayed", "delayed"]
    wrong_key = client.get("/predictions", headers={"X-API-Key": "guess"})
    assert wrong_key.status_code == 401 and seen[-1] == "delayed"   # key guessing is paced too


def test_keyed_rejections_and_valid_requests_are_not_paced(paced: tuple[TestClient, list[Pace]]) -> None:
    client, seen = paced
    for _ in range(3):
        answer = client.post("/predict/batch", content=HOSTILE_BODY,
                             headers={"content-type": "application/json", "X-API-Key": KEY})
        assert answer.status_code == 422
        assert client.post("/predict", json=EXAMPLE_APPLICANT).status_code == 200
    assert seen == []
