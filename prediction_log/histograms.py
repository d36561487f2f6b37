"""Histograms the log keeps as it writes: each feature and the score on the reference's PSI bins, and latency on
fixed log-spaced bins, per hour and model version. Drift (PSI) and latency quantiles read them: cost grows with
hours, not decisions.

A set of bins (``Bins``) is named by a digest of its edges, so counts kept for one reference are never read as
another's. PostgreSQL counts each stored decision into every registered set (``pg_histograms``), from the hour
after the set was registered: a window that starts earlier is not covered, and the caller falls back to its
sample. ``LATENCY`` is registered with the tables, so latency is counted from the start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from core.features import FEATURE_NAMES
from core.psi import bin_counts, psi_of_counts, reference_edges

PROBABILITY = "probability_default"
DRIFT_VARIABLES: tuple[str, ...] = (*FEATURE_NAMES, PROBABILITY)
"""The columns a reference's bins cover: the ten features and the score."""
LATENCY_VARIABLE = "latency_ms"
LATENCY_EDGES_MS: tuple[float, ...] = tuple(float(f"{0.1 * 1.1 ** i:.6g}") for i in range(140))
"""0.1 ms to ~57 s, each edge 10 % above the last: a quantile read from these bins is within 10 % of the true one."""


@dataclass(frozen=True)
class Bins:
    """Named edges of each variable: bin i of a variable holds ``edges[i-1] <= v < edges[i]``."""

    edges: dict[str, tuple[float, ...]]

    @property
    def id(self) -> str:
        text = json.dumps(self.edges, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def bins(self, variable: str) -> int:
        return len(self.edges[variable]) + 1


LATENCY = Bins({LATENCY_VARIABLE: LATENCY_EDGES_MS})


def drift_bins(reference: pd.DataFrame) -> Bins:
    """The PSI bins of a baseline's reference frame (the features and ``probability_default``)."""
    return Bins({name: tuple(float(e) for e in reference_edges(reference[name].to_numpy(dtype=np.float64)))
                 for name in DRIFT_VARIABLES})


def counts_psi(bins: Bins, reference: pd.DataFrame, counts: dict[str, np.ndarray], name: str) -> float:
    """PSI of ``name`` from a window's ``counts`` on ``bins`` against the reference frame the bins came from."""
    return psi_of_counts(bin_counts(np.asarray(bins.edges[name]), np.asarray(reference[name])), counts[name])


def quantiles(counts: np.ndarray, edges: tuple[float, ...], qs: tuple[float, ...]) -> list[float | None]:
    """Each quantile ``q`` of values counted on ``edges``: the upper edge of the bin holding it (an upper bound
    within one bin's width; the last, open bin reads as its lower edge)."""
    total = counts.sum()
    if not total:
        return [None for _ in qs]
    cumulative = np.cumsum(counts)
    upper = (*edges, edges[-1])
    return [float(upper[int(np.searchsorted(cumulative, q * total, side="left"))]) for q in qs]


def of_block(block: pa.RecordBatch, bins: Bins) -> dict[str, np.ndarray]:
    """Counts of some records in each variable's bins (the file log's way; PostgreSQL does it in SQL)."""
    return {name: bin_counts(np.asarray(edges), block.column(name).to_numpy(zero_copy_only=False))
            for name, edges in bins.edges.items()}


def added(parts: list[dict[str, np.ndarray]], bins: Bins) -> dict[str, np.ndarray]:
    """The sum of per-chunk counts."""
    return {name: sum((p[name] for p in parts), np.zeros(bins.bins(name), dtype=np.int64)) for name in bins.edges}


LATENCY_QUANTILES = (0.5, 0.95, 0.99)


def latency_quantiles(counts: np.ndarray) -> dict[str, float | None]:
    """``p50``, ``p95``, ``p99`` of latency (ms) from its counts on ``LATENCY_EDGES_MS``."""
    values = quantiles(counts, LATENCY_EDGES_MS, LATENCY_QUANTILES)
    return {f"p{round(q * 100)}": v for q, v in zip(LATENCY_QUANTILES, values)}
