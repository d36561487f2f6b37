"""Business-cost threshold search: deny when p >= t, cost = 10·FN + 1·FP, searched exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.decision import is_denied

FN_COST = 10.0
FP_COST = 1.0


@dataclass(frozen=True)
class CostCurve:
    """Cost at every distinct candidate threshold, ascending; ``inf`` means deny nobody."""

    thresholds: np.ndarray
    costs: np.ndarray
    false_negatives: np.ndarray
    false_positives: np.ndarray

    @property
    def best_index(self) -> int:
        """Index of the cheapest threshold (the highest one among equal-cost ties)."""
        return int(np.flatnonzero(self.costs == self.costs.min())[-1])

    @property
    def best_threshold(self) -> float:
        return float(self.thresholds[self.best_index])

    @property
    def best_cost(self) -> float:
        return float(self.costs[self.best_index])


def business_cost(y: np.ndarray, p: np.ndarray, threshold: float,
                  fn_cost: float = FN_COST, fp_cost: float = FP_COST) -> float:
    """Cost of denying every score ``>= threshold``."""
    denied = is_denied(p, threshold)
    fn = np.count_nonzero((y == 1) & ~denied)
    fp = np.count_nonzero((y == 0) & denied)
    return float(fn_cost * fn + fp_cost * fp)


def cost_curve(y: np.ndarray, p: np.ndarray,
               fn_cost: float = FN_COST, fp_cost: float = FP_COST) -> CostCurve:
    """Exact cost of every distinct score used as threshold, in O(n log n)."""
    values, inverse = np.unique(p, return_inverse=True)
    positives = np.bincount(inverse, weights=(y == 1), minlength=values.size)
    negatives = np.bincount(inverse, weights=(y == 0), minlength=values.size)
    # threshold = values[k]: scores below values[k] approved, the rest denied.
    fn = np.concatenate(([0.0], np.cumsum(positives)))  # approved positives, k = 0..n
    fp = np.concatenate((np.cumsum(negatives[::-1])[::-1], [0.0]))  # denied negatives
    thresholds = np.concatenate((values, [np.inf]))
    return CostCurve(thresholds, fn_cost * fn + fp_cost * fp, fn.astype(np.int64), fp.astype(np.int64))


def bayes_optimal_threshold(fn_cost: float = FN_COST, fp_cost: float = FP_COST) -> float:
    """With true probabilities, denying when p >= fp/(fn+fp) minimises the expected cost."""
    return fp_cost / (fn_cost + fp_cost)


def gridded(curve: CostCurve, step: float = 0.001) -> list[dict[str, float]]:
    """The exact curve read off on a ``step`` grid (for storage and plots)."""
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    index = np.searchsorted(curve.thresholds, grid, side="left")
    return [
        {"threshold": float(t), "cost": float(curve.costs[i]),
         "false_negatives": int(curve.false_negatives[i]), "false_positives": int(curve.false_positives[i])}
        for t, i in zip(grid, index)
    ]
