"""Performance estimated before outcomes arrive: confidence-based performance estimation (CBPE, as NannyML names it).

A calibrated probability ``p`` is the chance the loan defaults, so a bin of decisions with probabilities summing to
``S`` is expected to hold ``S`` defaults and ``n - S`` repayments. From those expected counts come the expected
ROC curve (hence AUC), default rate, Brier score (``E[(p - y)^2] = p(1 - p)``) and business cost at the decisions
taken. The interval is where the realized figure should fall if the probabilities are calibrated: outcomes drawn
from each bin's probabilities, the figures recomputed per draw. CBPE cannot see concept drift: when the relation
between inputs and default changes, the probabilities stop being calibrated and the estimate stays where it was;
only realized figures (``models.performance``) and calibration on labelled decisions show it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.threshold import FN_COST, FP_COST

DRAWS = 400
"""Outcome draws behind the interval: its 2.5 % and 97.5 % quantiles move by well under 0.001 AUC between seeds."""
INTERVAL = (0.025, 0.975)


def _area(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """AUC from counts per bin in ascending probability order (last axis): pairs with the default scored higher,
    a tie within a bin counting half."""
    below = np.cumsum(negative, axis=-1) - negative
    pairs = positive.sum(axis=-1) * negative.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (positive * (below + 0.5 * negative)).sum(axis=-1) / pairs, np.nan)


DRAWN_CELLS = 200
"""Cells the outcome draws run on at most (see ``estimated_from_bins``)."""
NORMAL_FROM = 50
"""Entries of at least this many decisions draw their defaults from the binomial's normal approximation (rounded,
within 0 … n): twenty times faster than exact binomial draws, and the interval moves by well under its own noise."""


def _drawn_defaults(count: np.ndarray, p: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` × entries: each entry's defaults drawn as if its decisions defaulted with probability ``p``."""
    rng = np.random.default_rng(seed)
    out = np.empty((draws, len(count)))
    small = count < NORMAL_FROM
    out[:, small] = rng.binomial(count[small], p[small], size=(draws, int(small.sum())))
    n, q = count[~small], p[~small]
    normal = n * q + np.sqrt(n * q * (1 - q)) * rng.standard_normal((draws, len(n)))
    out[:, ~small] = np.clip(np.rint(normal), 0, n)
    return out


def estimated_from_bins(probability_bin: np.ndarray, denied: np.ndarray, count: np.ndarray,
                        probability_sum: np.ndarray, probability_sq_sum: np.ndarray,
                        draws: int = DRAWS, seed: int = 0) -> dict[str, Any]:
    """Estimated AUC, default rate, Brier and cost of decisions counted per (probability bin, denied) entry
    (``prediction_log.labelled_bins`` rows of every decision), each with the interval the realized figure should
    fall in under calibration."""
    n = int(count.sum())
    if not n:
        return {"decisions": 0, "auc": None, "auc_interval": None, "default_rate": None,
                "default_rate_interval": None, "brier": None, "cost": None, "cost_per_decision": None,
                "cost_per_decision_interval": None}
    order = np.argsort(probability_bin, kind="stable")
    bins, count, p_sum, sq_sum = probability_bin[order], count[order], probability_sum[order], \
        probability_sq_sum[order]
    denied = denied[order]
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    expected_defaults = np.add.reduceat(p_sum, starts)
    per_bin = np.add.reduceat(count.astype(np.float64), starts)
    area = float(_area(expected_defaults, per_bin - expected_defaults))
    fn, fp = float(p_sum[~denied].sum()), float((count - p_sum)[denied].sum())
    cost = FN_COST * fn + FP_COST * fp

    # The draws run on at most DRAWN_CELLS cells (neighbouring bins merged, the decision kept apart): the AUC's
    # spread is taken from them and centred on the estimate from the fine bins.
    rank = np.cumsum(np.r_[False, bins[1:] != bins[:-1]])
    cell_bin = rank // max(1, -(-len(starts) // DRAWN_CELLS))
    cells, cell_of = np.unique(cell_bin * 2 + denied, return_inverse=True)
    c_count, c_defaults = np.bincount(cell_of, count), np.bincount(cell_of, p_sum)
    c_denied, c_starts = cells % 2 == 1, np.flatnonzero(np.r_[True, cells[1:] // 2 != cells[:-1] // 2])
    c_per_bin, c_expected = np.add.reduceat(c_count, c_starts), np.add.reduceat(c_defaults, c_starts)
    defaults = _drawn_defaults(c_count.astype(np.int64), np.clip(c_defaults / np.maximum(c_count, 1), 0.0, 1.0),
                               draws, seed)
    drawn_bin_defaults = np.add.reduceat(defaults, c_starts, axis=1)
    drawn_auc = _area(drawn_bin_defaults, c_per_bin - drawn_bin_defaults) - _area(c_expected, c_per_bin - c_expected) \
        + area
    drawn_rate = defaults.sum(axis=1) / n
    drawn_cost = (FN_COST * defaults[:, ~c_denied].sum(axis=1)
                  + FP_COST * (c_count - defaults)[:, c_denied].sum(axis=1)) / n

    def interval(values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        return [float(v) for v in np.quantile(values, INTERVAL)] if len(values) else None

    return {
        "decisions": n,
        "auc": area if np.isfinite(area) and len(starts) > 1 else None,   # one bin: no order to estimate
        "auc_interval": interval(drawn_auc) if len(starts) > 1 else None,
        "default_rate": float(p_sum.sum() / n),
        "default_rate_interval": interval(drawn_rate),
        "brier": float((p_sum - sq_sum).sum() / n),
        "cost": cost,
        "cost_per_decision": cost / n,
        "cost_per_decision_interval": interval(drawn_cost),
    }
