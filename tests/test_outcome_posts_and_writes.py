"""Outcome posts against decision writes in one PostgreSQL log: posts wait for each other (the advisory lock that
keeps check-and-insert whole) without holding the write connections that decisions are copied on."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import numpy as np

from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from deployments.decisions import decision_block
from prediction_log.outcomes import Outcomes
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import PostgresStore
from tests.support.pg_cluster import PgCluster

POSTS, ITEMS = 20, 10_000
WRITE_TIMEOUT_S = 1.0   # the log writer's log_write_timeout_s: a block waiting longer is spooled


def _block(n: int, seed: int):
    rows = np.array([[a[name] for name in FEATURE_NAMES] for a in sample_applicants(n, seed=seed)], dtype=np.float64)
    return decision_block(rows, np.linspace(0.01, 0.9, n), "test-version", 0.5, 1.0, "batch")


def test_parallel_outcome_posts_leave_decision_writes_their_connections(pg: PgCluster) -> None:
    async def scenario() -> tuple[list[float], int]:
        store = await PostgresStore.connect(pg.dsn, write_connections=4)
        try:
            logged = _block(ITEMS, 1)
            await store.insert(logged)
            ids = logged.column("request_id").to_pylist()
            outcomes = PostgresOutcomes(store)
            now = [datetime.now(UTC)] * ITEMS
            posts = [asyncio.create_task(outcomes.record(Outcomes(ids, [i % 2 for i in range(ITEMS)], now)))
                     for _ in range(POSTS)]
            await asyncio.sleep(0.2)   # the posts are queued (each one a 10,000-item check and insert)
            waits = []
            for seed in range(2, 7):   # decisions keep being written while the posts run
                started = time.monotonic()
                await asyncio.wait_for(store.insert(_block(200, seed)), WRITE_TIMEOUT_S * 5)
                waits.append(time.monotonic() - started)
            receipts = await asyncio.gather(*posts)
            return waits, sum(r.accepted for r in receipts)
        finally:
            await store.close()

    waits, accepted = asyncio.run(scenario())
    assert accepted == ITEMS   # the first post stored them all, the other 19 found them (duplicates)
    # Before the posts queued in-process they took all 4 write connections while waiting on the advisory lock,
    # and a block waited for the whole queue (seconds), past the write timeout.
    assert max(waits) < WRITE_TIMEOUT_S, waits
