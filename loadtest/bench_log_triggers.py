"""What counting as the log writes costs per decision, apart from the server: COPYs of 1,000 decisions timed with
no counting, with the aggregates' trigger (``pg_aggregates``) and with the histograms too (``pg_histograms``, a
baseline's PSI bins and latency: counted by the writer with NumPy and added in the COPY's transaction) and with the
days' probability bins of estimated performance (``pg_scored``) and the age bands of ``pg_fairness_days``.

    uv run python -m loadtest.bench_log_triggers --database-url postgresql://postgres@127.0.0.1:5432/postgres

Each way gets a fresh database (partitioned table, the server's own ``PostgresStore``), the same ``--blocks`` blocks
of 1,000 scored reference applicants (new request_ids, one hour), written one COPY after another; the ways
alternate for ``--rounds`` rounds and the median per COPY is reported. Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core.artifacts import resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from core.settings import PROJECT_ROOT
from deployments.decisions import decision_block
from loadtest.bench_throughput import _database
from models.baseline import load_baseline
from prediction_log.histograms import drift_bins
from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres.groups import TABLE as GROUPS
from prediction_log.postgres.groups import PostgresGroups
from prediction_log.postgres.outcomes import TABLE as OUTCOMES
from prediction_log.postgres.store import TABLE, PostgresStore
from prediction_log.records import Block

DROPPED = {"no trigger": (pg_histograms, pg_aggregates, pg_scored, pg_fairness_days),
           "aggregates": (pg_histograms, pg_scored, pg_fairness_days),
           "aggregates and histograms": (pg_scored, pg_fairness_days),
           "aggregates, histograms and scored days": (pg_fairness_days,),
           "every count (and the age bands of fairness_days)": ()}
"""Each way: the counting dropped from the schema the store makes."""
WAYS = tuple(DROPPED)
ROWS = 1000


def blocks(n: int) -> list[Block]:
    """``n`` blocks of ``ROWS`` decisions with their own request_ids, spread over the next hour."""
    rows = np.array([[a[f] for f in FEATURE_NAMES] for a in sample_applicants(ROWS, seed=1)], dtype=np.float64)
    rng = np.random.default_rng(1)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    made = []
    for i in range(n):
        block = decision_block(rows, rng.uniform(0, 1, ROWS), "bench", 0.3, rng.uniform(1, 50, ROWS), "batch")
        ts = pa.array([start + timedelta(seconds=3 * i)] * ROWS, pa.timestamp("us", tz="UTC"))
        ids = pa.array([uuid.uuid4().hex for _ in range(ROWS)])
        for name, column in (("request_id", ids), ("ts", ts)):
            index = block.schema.get_field_index(name)
            block = block.set_column(index, block.schema.field(index), column)
        made.append(block)
    return made


async def per_copy_ms(server_dsn: str, way: str, data: list[Block]) -> float:
    """Median milliseconds per COPY of ``data`` into a fresh database with ``way``'s triggers."""
    dsn = await _database(server_dsn, f"bench_triggers_{os.getpid()}", create=True)
    store = await PostgresStore.connect(dsn)
    await PostgresGroups(store).ensure_schema()   # the tables beside the log, and fairness_days
    try:
        async with store.pool.acquire() as conn:
            await pg_histograms.register(conn, drift_bins(load_baseline(resolve_model_dir(None)).frame), 60)
            for module in DROPPED[way]:
                statements = module.stop_counting_sql(TABLE, OUTCOMES, GROUPS) if module is pg_fairness_days \
                    else module.stop_counting_sql(TABLE)
                for statement in statements:
                    await conn.execute(statement)
        times = []
        for block in data:
            started = time.perf_counter()
            await store.insert(block)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 2)
    finally:
        await store.close()
        await _database(server_dsn, f"bench_triggers_{os.getpid()}", create=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), required=False)
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "log_triggers.json")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    data = blocks(args.blocks)
    runs: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            runs[way].append(asyncio.run(per_copy_ms(args.database_url, way, data)))
    none = statistics.median(runs[WAYS[0]])
    report: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows_per_copy": ROWS, "copies": args.blocks,
        "ms_per_copy": {way: statistics.median(ms) for way, ms in runs.items()}, "runs_ms": runs,
        "trigger_us_per_decision": {way: round((statistics.median(ms) - none) * 1000 / ROWS, 1)
                                    for way, ms in runs.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
