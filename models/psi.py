"""Population Stability Index of one feature against its reference distribution."""

from __future__ import annotations

import numpy as np

PSI_BINS = 10
PSI_EPSILON = 1e-4
PSI_ALERT = 0.2
"""Common reading: < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 significant shift."""
EDGE_TOLERANCE = 1e-7


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI over the reference's quantile bins (ties merged, edges compared to ``EDGE_TOLERANCE``); empty bins
    floored at ``PSI_EPSILON``."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # a value within rounding of an edge counts as on it: an imputed constant (a fifth of EXT_SOURCE_3) written
    # with fewer digits in the reference CSV than the log holds would otherwise change bins and read as PSI 2
    inner = inner - EDGE_TOLERANCE * np.maximum(1.0, np.abs(inner))
    ref_share = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1) / len(reference)
    cur_share = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1) / len(current)
    ref_share = np.maximum(ref_share, PSI_EPSILON)
    cur_share = np.maximum(cur_share, PSI_EPSILON)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
