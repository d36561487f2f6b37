"""Decision aggregates: what monitoring reads instead of rows, exact whichever path wrote the rows.

PostgreSQL (a throwaway cluster): the trigger's aggregates equal the same figures computed in Python from
the records (``aggregates.of_block``) after live COPYs, a conflicting COPY, spool replays of duplicates, a
single-row insert, and a log that had rows before the trigger existed. The route: counts equal what the
clients were answered, and it needs scope ``read``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from deployments.decisions import decision_block
from prediction_log.aggregates import of_block, summary
from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres.store import TABLE, PostgresStore
from prediction_log.records import Block, concat
from tests.conftest import API_KEY
from tests.support.in_process import InProcessBackend
from tests.support.pg_cluster import PgCluster

START = datetime(2026, 11, 30, 10, 58, 30, tzinfo=UTC)


def spread_block(n: int, seed: int, endpoint: str = "batch", version: str = "v-agg") -> Block:
    """``n`` decisions of varied scores and latencies, 7 s apart from START: several minutes and two hours."""
    rng = np.random.default_rng(seed)
    rows = np.array([[a[name] for name in FEATURE_NAMES] for a in sample_applicants(n, seed=seed)], dtype=np.float64)
    block = decision_block(rows, rng.uniform(0, 1, n), version, 0.3, rng.uniform(1, 50, n), endpoint)
    ts = pa.array([START + timedelta(seconds=7 * i + seed) for i in range(n)], pa.timestamp("us", tz="UTC"))
    index = block.schema.get_field_index("ts")
    return block.set_column(index, block.schema.field(index), ts)


def expected(blocks: list[Block], bucket: str) -> dict:
    return summary(of_block(concat(blocks), bucket), bucket)   # type: ignore[arg-type]


def close(a: dict, b: dict) -> bool:
    """Equal, latency sums to float precision (SQL adds real in another order); the latency quantiles are
    ``test_histograms``'s."""
    skip = {"latency_ms_mean", "latency_ms_quantiles"}
    return {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip} \
        and abs(a["latency_ms_mean"] - b["latency_ms_mean"]) < 1e-3


@pytest.mark.slow
def test_postgres_aggregates_equal_the_records_whichever_path_wrote_them(pg: PgCluster) -> None:
    async def scenario() -> None:
        dsn = await pg.fresh_database("aggregates_test")
        store = await PostgresStore.connect(dsn)
        try:
            a, b, c, single = spread_block(120, 1), spread_block(80, 2, "predict"), spread_block(50, 3), \
                spread_block(1, 4, "predict")
            assert await store.insert(a) == 120
            assert await store.replay(a) == 0                       # a spool replay of what is stored
            assert await store.insert(concat([a, b])) == 80          # a COPY refused by one id: merged
            assert await store.insert_one(single) == 1 and await store.insert_one(single) == 0
            stored = [a, b, single]
            for bucket in ("minute", "hour"):
                assert close(await store.summary(None, None, bucket), expected(stored, bucket)), bucket
            assert await store.count() == 201
            since, until = START + timedelta(minutes=3), START.replace(second=0) + timedelta(minutes=9)
            window = await store.summary(since, until, "minute")   # since falls mid-minute: its whole minute counts
            log = concat(stored)
            records = log.filter(pa.compute.and_(
                pa.compute.greater_equal(log.column("ts"), pa.scalar(since.replace(second=0))),
                pa.compute.less(log.column("ts"), pa.scalar(until))))
            assert window["decisions"] == len(records) > 0

            async with store.pool.acquire() as conn:   # a log older than its trigger: counted once at creation
                await conn.execute(f"DROP TRIGGER {pg_aggregates.TRIGGER} ON {TABLE}")
                await conn.execute(f"TRUNCATE {', '.join(pg_aggregates.TABLES.values())}")
            await store.insert(c)
            async with store.pool.acquire() as conn:
                await pg_aggregates.ensure_schema(conn, TABLE)
                await pg_aggregates.ensure_schema(conn, TABLE)     # again: nothing counted twice
                rows = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
            assert await store.count() == rows == 251
            assert close(await store.summary(None, None, "hour"), expected([a, b, single, c], "hour"))
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_summary_counts_what_the_clients_were_answered(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, _ = local_api
    since = datetime.now(UTC)
    applicants = sample_applicants(60, seed=11)
    answers = [client.post("/predict", json=a).json() for a in applicants[:20]]
    answers += client.post("/predict/batch", json=applicants[20:]).json()["results"]
    assert client.get("/predictions/summary").status_code == 401
    assert client.get("/predictions/summary?bucket=day", headers={"X-API-Key": API_KEY}).status_code == 422
    report = client.get("/predictions/summary", params={"since": since.isoformat()},
                        headers={"X-API-Key": API_KEY}).json()
    decided = Counter(a["credit_decision"] for a in answers)
    assert report["bucket"] == "hour" and report["decisions"] == 60
    assert (report["approved"], report["denied"]) == (decided["approved"], decided["denied"])
    assert report["by_endpoint"] == {"predict": 20, "batch": 40}
    assert sum(report["probability_histogram"]["counts"]) == 60 == sum(s["decisions"] for s in report["series"])
