"""Reads cannot starve writes: six loops of the heaviest log reads while /predict is under load, on both stores.

Before, PostgreSQL had one pool of 4 connections for both (``acquire`` without a timeout; /performance and
/challenger may hold one 30 s) and the file log's reads and appends shared the log writer's few executor
threads: a client holding only the ``read`` scope could push the log path into spooling, then 503. Now
writes and reads have their own connections (file log: their own threads). Checked against what the
clients saw: no 503 on /predict, /health stays ``ok``, every decision answered 200 is in the store.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from core.reference import sample_applicants
from tests.support.serving import Load, RunningApp
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow

HEAVY_READS = ["/performance", "/challenger", "/predictions?until=1971-01-01T00:00:00Z",
               "/predictions?limit=1000&offset=100000", "/predictions/stats", "/performance?by=day"]


@pytest.mark.parametrize("backend", ["file_app", "pg_app"])
def test_heavy_reads_leave_scoring_and_logging_alone(backend: str, request: pytest.FixtureRequest) -> None:
    app: RunningApp = request.getfixturevalue(backend)
    start = app.stats()["records_in_store"]
    with app.client() as client:   # some history to read: 20 batches of 1,000
        for _ in range(20):
            assert client.post("/predict/batch", json=sample_applicants(1000, seed=7)).status_code == 200
    stored_before = app.wait_logged(start + 20_000)["records_in_store"]
    assert stored_before == start + 20_000
    stop = threading.Event()
    reads: Counter[int] = Counter()
    health: Counter[str] = Counter()

    def read_loop(path: str) -> None:
        with app.client(timeout=60) as client:
            while not stop.is_set():
                try:
                    reads[client.get(path, headers=app.auth()).status_code] += 1
                except httpx.HTTPError:
                    reads[0] += 1

    readers = [threading.Thread(target=read_loop, args=(p,), daemon=True) for p in HEAVY_READS]
    load = Load(app.url, connections=4).start()
    for reader in readers:
        reader.start()
    try:
        for _ in range(20):
            load.wait_for(100, timeout_s=60)
            health[httpx.get(f"{app.url}/health", timeout=30).json()["log"]] += 1
    finally:
        stop.set()
        load.stop()
        for reader in readers:
            reader.join()
    statuses = Counter(load.statuses)
    answered = {b["request_id"] for b in load.bodies}
    stats = app.wait_logged(stored_before + len(answered), timeout_s=120)
    record_figures(f"reads_vs_writes_{backend}", {"predict": dict(statuses), "reads": dict(reads),
                                                  "health_log": dict(health), "answered_200": len(answered),
                                                  "stored_after": stats["records_in_store"] - stored_before})
    assert set(statuses) == {200}, statuses
    assert set(health) == {"ok"}, health
    assert stats["records_in_store"] == stored_before + len(answered)
