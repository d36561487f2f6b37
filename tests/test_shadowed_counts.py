"""``/challenger`` from PostgreSQL's counts (``pg_shadowed``) equals the comparison made from the same decisions'
rows (a throwaway cluster): two version pairs, a third of the decisions labelled, a window cut mid-way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from deployments.challenger_report import comparison
from monitoring.scenarios import SCENARIOS
from monitoring.traffic import applicants, backfill_records
from prediction_log.outcomes import Outcomes
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import PostgresStore
from prediction_log.records import Block
from tests.support.comparisons import assert_counts_give_the_rows_comparison
from tests.support.pg_cluster import PgCluster

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def shadowed_decisions() -> Block:
    """3,000 decisions over three days; four in five scored by a challenger, of two versions."""
    block = backfill_records(applicants(SCENARIOS["control"], 3000, seed=9, ramp=False), days=3, end=NOW)
    n = len(block)
    rng = np.random.default_rng(9)
    shadowed = np.arange(n) % 5 != 0
    score = np.clip(block.column("probability_default").to_numpy() + rng.normal(0, 0.03, n), 0, 1)
    version = np.where(np.arange(n) % 2 == 0, "c1", "c2")
    columns = {
        "challenger_version": pa.array(np.where(shadowed, version, None).tolist(), pa.string()),
        "challenger_probability": pa.array(np.where(shadowed, score, np.nan), mask=~shadowed),
        "challenger_decision": pa.array(np.where(shadowed, np.where(score >= 0.3, "denied", "approved"), None).tolist(),
                                        pa.string()),
    }
    for name, values in columns.items():
        block = block.set_column(block.schema.get_field_index(name), name, values)
    return block


@pytest.mark.slow
def test_counts_give_the_comparison_of_the_rows(pg: PgCluster) -> None:
    async def scenario() -> None:
        store = await PostgresStore.connect(await pg.fresh_database("shadowed_counts_test"))
        try:
            block = shadowed_decisions()
            assert await store.insert(block) == 3000
            ids = block.column("request_id").to_pylist()[::3]   # both pairs get outcomes
            defaulted = (np.random.default_rng(10).random(len(ids)) < 0.2).astype(int).tolist()
            outcomes = PostgresOutcomes(store)
            await outcomes.record(Outcomes(ids, defaulted, [NOW] * len(ids)))
            for since, until in ((None, None), (NOW - timedelta(days=2, hours=5), NOW - timedelta(hours=7))):
                counted = comparison(await outcomes.shadowed_for_reports(since, until))
                assert_counts_give_the_rows_comparison(counted, comparison(await outcomes.shadowed(since, until)))
        finally:
            await store.close()

    asyncio.run(scenario())
