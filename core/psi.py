"""Population Stability Index of one feature against its reference distribution.

The bins are the reference's quantile bins (``reference_edges``); a window's share of each bin comes from its
values (``bin_counts``) or from counts the log keeps as it writes (``prediction_log.histograms``): both give the
same PSI (``psi_of_counts``).
"""

from __future__ import annotations

import numpy as np

PSI_BINS = 10
PSI_EPSILON = 1e-4
PSI_ALERT = 0.2
"""Common reading: < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 significant shift."""
EDGE_TOLERANCE = 1e-7


def reference_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The inner edges of the reference's quantile bins (ties merged), each lowered by ``EDGE_TOLERANCE``."""
    reference = np.asarray(reference, dtype=np.float64)
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # a value within rounding of an edge counts as on it: an imputed constant (a fifth of EXT_SOURCE_3) written
    # with fewer digits in the reference CSV than the log holds would otherwise change bins and read as PSI 2
    return inner - EDGE_TOLERANCE * np.maximum(1.0, np.abs(inner))


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each bin: bin i holds ``edges[i-1] <= v < edges[i]`` (PostgreSQL's
    ``width_bucket(v, edges)`` numbers them the same way)."""
    values = np.asarray(values, dtype=np.float64)
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi_of_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two histograms on the same bins; empty bins floored at ``PSI_EPSILON``."""
    ref_share = np.maximum(reference / reference.sum(), PSI_EPSILON)
    cur_share = np.maximum(current / current.sum(), PSI_EPSILON)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI of ``current`` over the reference's quantile bins."""
    edges = reference_edges(reference, bins)
    return psi_of_counts(bin_counts(edges, reference), bin_counts(edges, current))
