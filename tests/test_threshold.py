"""Exact business-cost threshold search against brute force."""

import numpy as np
import pytest

from models import threshold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_finds_true_minimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(1, 8, 600), 3)  # rounding creates ties
    y = (rng.random(600) < p * 1.5).astype(int)
    curve = threshold.cost_curve(y, p)
    candidates = np.concatenate((np.unique(p), [np.inf]))
    brute = [threshold.business_cost(y, p, t) for t in candidates]
    assert curve.costs.tolist() == brute
    assert curve.best_cost == min(brute)
    assert threshold.business_cost(y, p, curve.best_threshold) == curve.best_cost
    # No threshold between candidates can do better: the cost is constant between them.
    for t in rng.random(200):
        assert threshold.business_cost(y, p, t) >= curve.best_cost


def test_bayes_threshold_is_cost_ratio() -> None:
    assert threshold.bayes_optimal_threshold() == pytest.approx(1 / 11)


def test_gridded_curve_reads_exact_costs() -> None:
    rng = np.random.default_rng(3)
    p, y = rng.random(500), rng.integers(0, 2, 500)
    curve = threshold.cost_curve(y, p)
    for row in threshold.gridded(curve)[::50]:
        assert row["cost"] == threshold.business_cost(y, p, row["threshold"])
