"""Decision counts per time bucket, kept as decisions are written: monitoring reads buckets, not rows.

One aggregate row per (bucket, model_version, endpoint, credit_decision, probability_bin) holds how many
decisions fell there and their latency sum and maximum. The probability bin (``PROBABILITY_BINS`` equal
bins of [0, 1]) makes the score histogram additive like the counts, so every window's counts, approval
rate, volume series, latency mean and score histogram come from these rows, whatever the window's size.
Buckets are a minute (``minute``) and an hour (``hour``), in UTC. PostgreSQL keeps both tables from the
log's inserts (``pg_aggregates``); the file log computes the same rows from its records (``of_block``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prediction_log.records import Block

PROBABILITY_BINS = 20
"""Equal-width bins of the probability of default: 0.05 wide."""
Bucket = Literal["minute", "hour"]
KEY = ("bucket", "model_version", "endpoint", "credit_decision", "probability_bin")
"""The aggregate row's key, in table order; then ``decisions``, ``latency_ms_sum``, ``latency_ms_max``."""
HOURLY_FROM_HOURS = 6
"""A window longer than this reads the hourly rows (a week: 168 buckets, not 10,080)."""


@dataclass(frozen=True)
class AggregateRow:
    bucket: datetime
    model_version: str
    endpoint: str
    credit_decision: str
    probability_bin: int
    decisions: int
    latency_ms_sum: float
    latency_ms_max: float


def bucket_for(since: datetime | None, until: datetime | None) -> Bucket:
    """Minutes for a short window, hours otherwise (an open window is long)."""
    if since is None or until is None:
        return "hour"
    return "minute" if (until - since).total_seconds() <= HOURLY_FROM_HOURS * 3600 else "hour"


def window_start(since: datetime | None, bucket: Bucket) -> datetime | None:
    """A window starts with the bucket ``since`` falls in: aggregates cannot split a bucket."""
    if since is None:
        return None
    since = since.astimezone(UTC)
    return since.replace(second=0, microsecond=0) if bucket == "minute" else since.replace(minute=0, second=0,
                                                                                           microsecond=0)


def probability_bin(probabilities: np.ndarray) -> np.ndarray:
    """The bin of each probability: 0 … PROBABILITY_BINS - 1 (1.0 falls in the last)."""
    return np.minimum(np.floor(probabilities * PROBABILITY_BINS), PROBABILITY_BINS - 1).astype(np.int16)


def of_block(block: Block, bucket: Bucket) -> list[AggregateRow]:
    """The aggregate rows of some records (the file log's way; PostgreSQL does the same in SQL)."""
    if len(block) == 0:
        return []
    table = pa.table({
        "bucket": pc.floor_temporal(block.column("ts"), unit=bucket),
        "model_version": block.column("model_version"), "endpoint": block.column("endpoint"),
        "credit_decision": block.column("credit_decision"),
        "probability_bin": probability_bin(block.column("probability_default").to_numpy()),
        "latency_ms": pc.cast(block.column("latency_ms"), pa.float64())})
    grouped = table.group_by(list(KEY)).aggregate([("latency_ms", "count"), ("latency_ms", "sum"),
                                                   ("latency_ms", "max")])
    return [AggregateRow(r["bucket"], r["model_version"], r["endpoint"], r["credit_decision"], r["probability_bin"],
                         r["latency_ms_count"], r["latency_ms_sum"], r["latency_ms_max"])
            for r in grouped.to_pylist()]


def summary(rows: list[AggregateRow], bucket: Bucket) -> dict[str, Any]:
    """A window's figures from its aggregate rows: totals, per endpoint and model version, the score
    histogram, latency, and the per-bucket series (oldest first)."""
    total = sum(r.decisions for r in rows)
    approved = sum(r.decisions for r in rows if r.credit_decision == "approved")
    histogram = [0] * PROBABILITY_BINS
    series: dict[datetime, dict[str, int]] = defaultdict(lambda: {"decisions": 0, "approved": 0})
    by_endpoint: dict[str, int] = defaultdict(int)
    by_version: dict[str, dict[str, int]] = defaultdict(lambda: {"decisions": 0, "approved": 0})
    for r in rows:
        histogram[r.probability_bin] += r.decisions
        by_endpoint[r.endpoint] += r.decisions
        for figures in (series[r.bucket], by_version[r.model_version]):
            figures["decisions"] += r.decisions
            figures["approved"] += r.decisions if r.credit_decision == "approved" else 0
    return {
        "bucket": bucket, "decisions": total, "approved": approved, "denied": total - approved,
        "approval_rate": approved / total if total else None,
        "latency_ms_mean": sum(r.latency_ms_sum for r in rows) / total if total else None,
        "latency_ms_max": max((r.latency_ms_max for r in rows), default=None),
        "by_endpoint": dict(by_endpoint), "by_model_version": dict(by_version),
        "probability_histogram": {"bin_width": 1 / PROBABILITY_BINS, "counts": histogram},
        "series": [{"bucket": b.isoformat(), **f} for b, f in sorted(series.items())],
    }
