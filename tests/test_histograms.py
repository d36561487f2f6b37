"""The histograms the log keeps (``prediction_log.histograms``): PSI and latency quantiles from counts, equal to the
same figures computed from the records.

PostgreSQL (a throwaway cluster): the counts equal ``histograms.of_block`` of the stored records after a big live
COPY (counted by the writer), a conflicting COPY, a spool replay and a single-row insert (by the trigger), and the
trigger's count of the whole log row for row; bins asked for the first time are
registered and cover the hours after that one only. The file log counts its window's records the same way.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.artifacts import resolve_model_dir
from core.psi import bin_counts, psi, psi_of_counts
from loadtest import bench_log_triggers
from models.baseline import load_baseline
from prediction_log import histograms
from prediction_log.files.store import FileStore
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, drift_bins, latency_quantiles, quantiles
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres.store import PostgresStore
from prediction_log.records import Block, concat
from tests.support.pg_cluster import PgCluster
from tests.test_aggregates import spread_block


def at(block: Block, start: datetime) -> Block:
    """``block`` moved so its first record is at ``start`` (records keep their spacing)."""
    ts = block.column("ts").to_pylist()
    moved = pa.array([start + (t - ts[0]) for t in ts], pa.timestamp("us", tz="UTC"))
    index = block.schema.get_field_index("ts")
    return block.set_column(index, block.schema.field(index), moved)


def equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_quantiles_from_counts_are_within_a_bin_of_the_true_ones() -> None:
    latencies = np.random.default_rng(0).lognormal(2.0, 0.8, 50_000)
    counts = bin_counts(np.asarray(LATENCY.edges[LATENCY_VARIABLE]), latencies)
    for q, estimate in zip((0.5, 0.95, 0.99), quantiles(counts, LATENCY.edges[LATENCY_VARIABLE], (0.5, 0.95, 0.99))):
        true = float(np.quantile(latencies, q))
        assert true <= estimate <= true * 1.1 + 1e-9, (q, true, estimate)
    assert latency_quantiles(np.zeros_like(counts)) == {"p50": None, "p95": None, "p99": None}


def test_psi_from_counts_equals_psi_from_the_values() -> None:
    frame = load_baseline(resolve_model_dir(None)).frame
    bins = drift_bins(frame)
    shifted = frame.assign(EXT_SOURCE_2=frame["EXT_SOURCE_2"] * 0.7)
    counts = histograms.of_block(pa.RecordBatch.from_pandas(shifted, preserve_index=False), bins)
    for name in bins.edges:
        from_counts = psi_of_counts(bin_counts(np.asarray(bins.edges[name]), frame[name]), counts[name])
        assert from_counts == pytest.approx(psi(frame[name].to_numpy(), shifted[name].to_numpy()), abs=1e-12), name


def test_the_file_log_counts_its_window(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FileStore(tmp_path / "predictions")
        start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
        early, late = at(spread_block(200, 1), start), at(spread_block(300, 2), start + timedelta(hours=3))
        await store.insert(concat([early, late]))
        bins = drift_bins(load_baseline(resolve_model_dir(None)).frame)
        window = await store.histograms(bins, start + timedelta(hours=3, minutes=30), None)   # from its whole hour
        assert window is not None and equal(window, histograms.of_block(late, bins))
        summary = await store.summary(None, None)
        latency = histograms.of_block(concat([early, late]), LATENCY)[LATENCY_VARIABLE]
        assert summary["latency_ms_quantiles"] == latency_quantiles(latency)
        await store.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_postgres_counts_equal_the_records_whichever_path_wrote_them(pg: PgCluster) -> None:
    async def scenario() -> None:
        store = await PostgresStore.connect(await pg.fresh_database("histograms_test"))
        try:
            bins = drift_bins(load_baseline(resolve_model_dir(None)).frame)
            now = datetime.now(UTC)
            assert await store.histograms(bins, now - timedelta(days=1), None) is None     # registered now
            assert await store.histograms(bins, now, None) is None                          # this hour: not covered
            covered_from = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            before = at(spread_block(60, 5), now - timedelta(hours=2))   # written after registering, yet too early
            a, b, single = (
                at(spread_block(120, 1), covered_from),
                at(spread_block(80, 2, "predict", "v-b"), covered_from),
                at(spread_block(1, 4, "predict"), covered_from + timedelta(hours=5)),
            )
            extra = at(spread_block(500, 3, version="v-b"), covered_from)  # a big live COPY of two model versions:
            assert len(concat([before, a, extra])) >= pg_histograms.WRITER_COUNTS_FROM  # counted by the writer
            assert await store.insert(concat([before, a, extra])) == 680
            assert await store.replay(a) == 0  # a spool replay of what is stored
            assert await store.insert(concat([a, b])) == 80  # a COPY refused by one id: merged
            assert await store.insert_one(single) == 1 and await store.insert_one(single) == 0
            counts = await store.histograms(bins, covered_from, None)
            assert counts is not None and equal(counts, histograms.of_block(concat([a, extra, b, single]), bins))
            later = await store.histograms(bins, covered_from + timedelta(hours=1), None)
            assert later is not None and equal(later, histograms.of_block(single, bins))

            stored = concat([before, a, extra, b, single])  # latency counts the whole log (and older rows)
            summary = await store.summary(None, None)
            assert summary["latency_ms_quantiles"] == latency_quantiles(
                histograms.of_block(stored, LATENCY)[LATENCY_VARIABLE]
            )
            async with store.pool.acquire() as conn:  # a log older than its trigger: counted once at creation
                counted = await conn.fetch(f"SELECT * FROM {pg_histograms.TABLE} ORDER BY 1, 2, 3, 4, 5")
                await conn.execute(f"DROP TRIGGER {pg_histograms.TRIGGER} ON predictions")
                await conn.execute(f"TRUNCATE {pg_histograms.TABLE}")
                await pg_histograms.ensure_schema(conn, "predictions")
                # the SQL's count of every row equals what the writer's live COPYs and the trigger's merges counted,
                # hour by hour, per set, variable, model version and bin
                assert await conn.fetch(f"SELECT * FROM {pg_histograms.TABLE} ORDER BY 1, 2, 3, 4, 5") == counted
            again = await store.histograms(bins, covered_from, None)
            assert again is not None and equal(again, histograms.of_block(concat([a, extra, b, single]), bins))
            assert (await store.summary(None, None))["latency_ms_quantiles"] == summary["latency_ms_quantiles"]

            async with store.pool.acquire() as conn:  # the writer's function taken away: the trigger counts instead
                await conn.execute(f"DROP FUNCTION {pg_histograms.ADD_SIGNATURE}")
            late = at(spread_block(pg_histograms.WRITER_COUNTS_FROM, 6), covered_from + timedelta(hours=2))
            assert await store.insert(late) == len(late)
            counts = await store.histograms(bins, covered_from, None)
            assert counts is not None and equal(counts, histograms.of_block(concat([a, extra, b, single, late]), bins))
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_the_trigger_benchmark_writes_its_json(pg: PgCluster, tmp_path: Path) -> None:
    """The benchmark runs as documented (two COPYs a way: its figures are not checked here, they are the JSON's)."""
    out = tmp_path / "triggers.json"
    bench_log_triggers.main(["--database-url", pg.dsn, "--blocks", "2", "--rounds", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    assert list(report["ms_per_copy"]) == list(bench_log_triggers.WAYS)
    assert all(ms > 0 for ms in report["ms_per_copy"].values())
