"""``labelled_days``: PostgreSQL's counts of labelled decisions equal the same counts made from the rows (a
throwaway cluster), after two posts, a re-post of duplicates and outcomes older than the trigger; a window with
partial days at its edges is answered exactly as its rows would be. ``scored_days`` (every decision) likewise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.decision import is_denied
from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from deployments.decisions import decision_block
from deployments.monitoring_run import realized as run_realized
from deployments.performance import performance
from prediction_log.files.store import FileStore
from prediction_log.labelled_bins import LabelledBins, of_rows
from prediction_log.outcomes import Labelled, Outcomes
from prediction_log.postgres import labelled as pg_labelled
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres.outcomes import TABLE as OUTCOMES
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import PostgresStore
from prediction_log.records import Block
from tests.support.pg_cluster import PgCluster

START = datetime(2026, 10, 1, 5, 30, tzinfo=UTC)


def decisions(n: int) -> Block:
    """``n`` decisions of varied scores, 10 minutes apart from START: about three weeks."""
    rng = np.random.default_rng(5)
    rows = np.array([[a[name] for name in FEATURE_NAMES] for a in sample_applicants(n, seed=5)], dtype=np.float64)
    block = decision_block(rows, rng.beta(2, 8, n), "v-days", 0.3, rng.uniform(1, 50, n), "batch")
    ts = pa.array([START + timedelta(minutes=10 * i) for i in range(n)], pa.timestamp("us", tz="UTC"))
    index = block.schema.get_field_index("ts")
    return block.set_column(index, block.schema.field(index), ts)


def from_rows(labelled: Labelled) -> LabelledBins:
    return of_rows(labelled.ts, labelled.model_version, labelled.probability,
                   is_denied(labelled.probability, labelled.threshold), labelled.defaulted)


def table(bins: LabelledBins) -> list[tuple]:
    """The bins as sorted rows (sums to float precision: SQL adds in another order)."""
    return sorted((str(d), v, int(b), bool(n), int(y), int(c), round(s, 9), round(q, 9), lo, hi) for
                  d, v, b, n, y, c, s, q, lo, hi in zip(bins.ts, bins.model_version, bins.probability_bin, bins.denied,
                                                        bins.defaulted, bins.count, bins.probability_sum,
                                                        bins.probability_sq_sum, bins.probability_min,
                                                        bins.probability_max))


@pytest.mark.slow
def test_labelled_days_equal_the_rows_counts(pg: PgCluster) -> None:
    async def scenario() -> None:
        store = await PostgresStore.connect(await pg.fresh_database("labelled_days_test"))
        try:
            block = decisions(3000)
            assert await store.insert(block) == 3000
            ids = block.column("request_id").to_pylist()
            defaulted = (np.random.default_rng(6).random(3000) < block.column("probability_default").to_numpy())
            now = datetime.now(UTC)

            def post(part: slice) -> Outcomes:
                return Outcomes(ids[part], [int(d) for d in defaulted[part]], [now] * len(ids[part]))

            outcomes = PostgresOutcomes(store)
            assert (await outcomes.record(post(slice(0, 1200)))).accepted == 1200
            assert (await outcomes.record(post(slice(1000, 2000)))).accepted == 800   # 200 duplicates
            assert (await outcomes.record(post(slice(0, 2000)))).duplicates == 2000
            everything = await outcomes.for_reports(None, None, None)
            assert everything.decisions == 2000
            assert table(everything) == table(from_rows(await outcomes.labelled(None, None, None)))

            since, until = START + timedelta(days=2, hours=7), START + timedelta(days=9, hours=3)   # partial days
            window = await outcomes.for_reports(since, until, None)
            rows = await outcomes.labelled(since, until, None)
            assert table(window) == table(from_rows(rows)) and window.decisions == len(rows) > 0
            report, exact = performance(window, "day", lambda v: None), performance(rows, "day", lambda v: None)
            assert [(p["period_start"], p["labelled"], p["cost"]) for p in report["periods"]] == \
                [(p["period_start"], p["labelled"], p["cost"]) for p in exact["periods"]]
            assert (await outcomes.for_reports(since, since + timedelta(hours=2), "v-days")).decisions == \
                len(await outcomes.labelled(since, since + timedelta(hours=2), "v-days")) > 0   # within a day
            assert (await outcomes.for_reports(None, None, "no-such-version")).decisions == 0
            from_counts = run_realized(everything, lambda version: None)   # the monitoring run's realized AUC
            from_labelled_rows = run_realized(await outcomes.labelled(None, None, None), lambda version: None)
            assert from_counts[2] == from_labelled_rows[2] == "v-days"
            assert abs(from_counts[0] - from_labelled_rows[0]) <= performance(everything, "day", lambda v: None)[
                "model_versions"]["v-days"]["auc_resolution"]

            async with store.pool.acquire() as conn:   # outcomes older than the trigger: counted once at creation
                await conn.execute(f"DROP TRIGGER {pg_labelled.TRIGGER} ON {OUTCOMES}")
                await conn.execute(f"TRUNCATE {pg_labelled.TABLE}")
            assert (await outcomes.record(post(slice(2000, 2600)))).accepted == 600
            async with store.pool.acquire() as conn:
                await pg_labelled.ensure_schema(conn, OUTCOMES, "predictions")
                await pg_labelled.ensure_schema(conn, OUTCOMES, "predictions")   # again: nothing counted twice
            everything = await outcomes.for_reports(None, None, None)
            assert everything.decisions == 2600
            assert table(everything) == table(from_rows(await outcomes.labelled(None, None, None)))
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_scored_days_equal_the_file_logs_counts(pg: PgCluster, tmp_path: Path) -> None:
    """``scored_days`` (every decision, kept by a trigger) equals the file log's counts of the same records, over
    whole days and a window with partial days at its edges; a replay counts nothing twice; rows stored before the
    trigger existed are counted once when it is made."""
    async def scenario() -> None:
        store = await PostgresStore.connect(await pg.fresh_database("scored_days_test"))
        files = FileStore(tmp_path / "log")
        try:
            block = decisions(3000)
            assert await store.insert(block.slice(0, 2000)) == 2000
            assert await store.replay(block.slice(1000, 500)) == 0   # a spool replayed over what is stored
            await files.insert(block.slice(0, 2000))
            assert table(await store.scored(None, None)) == table(await files.scored(None, None))
            assert (await store.scored(None, None)).decisions == 2000
            since, until = START + timedelta(days=2, hours=7), START + timedelta(days=9, hours=3)
            window = await store.scored(since, until, "v-days")
            assert table(window) == table(await files.scored(since, until, "v-days")) and window.decisions > 0

            async with store.pool.acquire() as conn:   # rows older than the trigger: counted once at creation
                await conn.execute(f"DROP TRIGGER {pg_scored.TRIGGER} ON predictions")
                await conn.execute(f"TRUNCATE {pg_scored.TABLE}")
            assert await store.insert(block.slice(2000)) == 1000
            await files.insert(block.slice(2000))
            async with store.pool.acquire() as conn:
                await pg_scored.ensure_schema(conn, "predictions")
                await pg_scored.ensure_schema(conn, "predictions")
            assert table(await store.scored(None, None)) == table(await files.scored(None, None))
            assert (await store.scored(None, None)).decisions == 3000
        finally:
            await store.close()
            await files.close()

    asyncio.run(scenario())
