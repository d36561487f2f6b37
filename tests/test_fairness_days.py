"""``fairness_days``: PostgreSQL's per-group counts, kept by triggers on decisions, group posts and outcomes, equal the
counts made from the records (``fairness_counts.of_block``, what the file log answers) — whatever order groups and
outcomes arrive in, with duplicates re-posted, concurrently, and for data older than the table; the SQL age band is
the Python one at the band edges; ``/fairness`` from counts equals ``/fairness`` from the rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from core.features import FEATURE_NAMES, age_bands
from core.reference import sample_applicants
from deployments.decisions import decision_block, with_challenger
from deployments.fairness import FairnessQuery, fairness_of, window_counts
from prediction_log.fairness_counts import COLUMNS, FairnessCounts, of_block
from prediction_log.groups import GroupPost
from prediction_log.outcomes import Outcomes
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres.store import PostgresStore
from prediction_log.records import Block
from prediction_log.stores import postgres_stores
from tests.support.pg_cluster import PgCluster

START = datetime(2026, 10, 1, 5, 30, tzinfo=UTC)


def decisions(n: int) -> Block:
    """``n`` decisions 10 minutes apart from START, every third one shadowed by a challenger."""
    rng = np.random.default_rng(7)
    rows = np.array([[a[name] for name in FEATURE_NAMES] for a in sample_applicants(n, seed=7)], dtype=np.float64)
    p = rng.beta(2, 8, n)
    block = with_challenger(decision_block(rows, p, "v-fair", 0.3, 5.0, "batch"),
                            np.clip(p + rng.normal(0, 0.05, n), 0, 1), "v-chal", 0.25)
    shadowed = np.arange(n) % 3 == 0
    for name in ("challenger_version", "challenger_probability", "challenger_decision"):
        index = block.schema.get_field_index(name)
        column = pa.array([v if s else None for v, s in zip(block.column(name).to_pylist(), shadowed)],
                          block.schema.field(name).type)
        block = block.set_column(index, block.schema.field(name), column)
    index = block.schema.get_field_index("ts")
    ts = pa.array([START + timedelta(minutes=10 * i) for i in range(n)], pa.timestamp("us", tz="UTC"))
    return block.set_column(index, block.schema.field(index), ts)


def table(counts: FairnessCounts) -> list[tuple]:
    """Entries summed per key, empty ones dropped (sums to float precision)."""
    totals: dict[tuple, list[float]] = {}
    for a, g, d, v, c, y, b, n, s in zip(counts.attribute, counts.group, counts.denied, counts.challenger_version,
                                         counts.challenger_denied, counts.defaulted, counts.probability_bin,
                                         counts.count, counts.probability_sum):
        entry = totals.setdefault((str(a), str(g), bool(d), str(v), int(c), int(y), int(b)), [0, 0.0])
        entry[0] += int(n)
        entry[1] += float(s)
    return sorted((*k, n, round(s, 9)) for k, (n, s) in totals.items() if n)


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested answer as path → leaf."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{prefix}/{i}").items()}
    return {prefix: value}


@pytest.mark.slow
def test_fairness_days_equal_the_records_counts(pg: PgCluster) -> None:
    async def scenario() -> None:
        stores = postgres_stores(await PostgresStore.connect(await pg.fresh_database("fairness_days_test")))
        try:
            block = decisions(3000)
            ids = block.column("request_id").to_pylist()
            await stores.groups.ensure_schema()   # the table before the decisions: counted as they are stored
            assert await stores.log.insert(block.slice(0, 2000)) == 2000
            assert await stores.log.replay(block.slice(500, 500)) == 0
            rng = np.random.default_rng(8)
            defaulted = (rng.random(3000) < block.column("probability_default").to_numpy()).astype(int)
            group = np.where(rng.random(3000) < 0.4, "B", "A")
            now = datetime.now(UTC)

            def outcomes(part: slice) -> Outcomes:
                return Outcomes(ids[part], [int(d) for d in defaulted[part]], [now] * len(ids[part]))

            def groups(part: slice, attribute: str = "segment") -> GroupPost:
                return GroupPost(ids[part], [attribute] * len(ids[part]), list(group[part]))

            await stores.outcomes.record(outcomes(slice(0, 600)))        # outcome before the group
            await stores.groups.record(groups(slice(0, 1200)))
            await stores.outcomes.record(outcomes(slice(400, 1500)))     # after the group; 200 duplicates
            await stores.groups.record(groups(slice(1000, 1800)))        # 200 duplicates
            await asyncio.gather(*(stores.outcomes.record(outcomes(slice(i, i + 50))) for i in range(1500, 1800, 50)),
                                 *(stores.groups.record(groups(slice(i, i + 50), "region"))
                                   for i in range(1500, 1800, 50)))       # the same decisions, at once
            since, until = START - timedelta(days=1), START + timedelta(days=30)

            async def from_records(since: datetime, until: datetime) -> FairnessCounts:
                part = await stores.log.records_between(since, until, COLUMNS)
                part_ids = part.column("request_id").to_pylist()
                return of_block(part, await stores.groups.of(part_ids), await stores.outcomes.defaulted_of(part_ids))

            assert table(await window_counts(stores, since, until)) == table(await from_records(since, until))
            edges = START + timedelta(days=2, hours=7), START + timedelta(days=9, hours=3)   # partial days
            assert table(await window_counts(stores, *edges)) == table(await from_records(*edges))
            query = FairnessQuery(since=edges[0], until=edges[1], min_decisions=10)
            from_counts, from_rows = fairness_of(await window_counts(stores, *edges), query), \
                fairness_of(await from_records(*edges), query)
            assert flat(from_counts).keys() == flat(from_rows).keys()
            for name, value in flat(from_counts).items():   # sums added in another order: to 1e-9
                assert value == (pytest.approx(flat(from_rows)[name], abs=1e-9) if isinstance(value, float)
                                 else flat(from_rows)[name]), name
            assert from_counts["attributes"]["segment"]["same_applicants"]["v-chal"]["challenger"]["groups"]

            async with stores.log.writing() as conn:   # older than the table: counted once when it is made
                for statement in pg_fairness_days.stop_counting_sql("predictions", "outcomes", "group_membership"):
                    await conn.execute(statement)
            assert await stores.log.insert(block.slice(2000)) == 1000
            await stores.outcomes.record(outcomes(slice(1800, 2500)))
            await stores.groups.record(groups(slice(1800, 2600)))
            async with stores.log.writing() as conn:
                for _ in range(2):
                    await pg_fairness_days.ensure_schema(conn, "predictions", "outcomes", "group_membership")
            assert table(await window_counts(stores, since, until)) == table(await from_records(since, until))
            assert sum((await window_counts(stores, since, until)).count) == 3000 + 2600 + 300
        finally:
            await stores.log.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_the_sql_age_band_is_the_python_one_at_the_edges(pg: PgCluster) -> None:
    days = np.array([-(years * 365.25) + delta for years in (25, 40, 62) for delta in (-1e-6, 0.0, 1e-6)]
                    + [-7000.0, -30000.0])

    async def scenario() -> list[str]:
        conn = await __import__("asyncpg").connect(pg.dsn)
        try:
            rows = await conn.fetch(f"SELECT {pg_fairness_days.age_band_sql('d')} FROM unnest($1::float8[]) d",
                                    days.tolist())
        finally:
            await conn.close()
        return [r[0] for r in rows]

    assert asyncio.run(scenario()) == list(age_bands(days))
