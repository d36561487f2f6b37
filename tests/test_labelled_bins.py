"""Realized performance from counts per probability bin equals the figures from the rows: exact where it says so,
AUC within the bound it reports."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deployments.performance import performance
from models.performance import realized, realized_from_bins
from prediction_log.labelled_bins import LabelledBins, of_rows


def _decisions(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    probability = np.round(rng.beta(2, 8, n), 6)
    defaulted = (rng.random(n) < probability).astype(np.int8)
    ts = np.datetime64("2026-11-01T00:00:00", "us") + (rng.random(n) * 20 * 86_400e6).astype("timedelta64[us]")
    versions = np.where(rng.random(n) < 0.7, "champion", "other").astype(object)
    return ts, versions, probability, probability >= 0.3, defaulted


def _figures(b: LabelledBins) -> dict:
    return realized_from_bins(b.probability_bin, b.denied, b.defaulted, b.count, b.probability_sum,
                              b.probability_sq_sum, b.probability_min, b.probability_max)


@pytest.mark.parametrize("n", [40, 2_500, 200_000])
def test_bins_give_the_rows_figures(n: int) -> None:
    ts, versions, probability, denied, defaulted = _decisions(n, seed=n)
    exact = realized(probability, defaulted, denied)
    binned = _figures(of_rows(ts, versions, probability, denied, defaulted))
    for name in ("labelled", "false_negatives", "false_positives", "cost"):
        assert binned[name] == exact[name], name
    for name in ("default_rate", "mean_probability", "brier", "cost_per_decision"):
        assert binned[name] == pytest.approx(exact[name], rel=1e-9), name
    assert 0 <= binned["auc_resolution"] < 0.01 and exact["auc_resolution"] == 0.0
    assert abs(binned["auc"] - roc_auc_score(defaulted, probability)) <= binned["auc_resolution"]
    assert sum(row["count"] for row in binned["calibration"]) == n
    assert binned["calibration_mean_abs_error"] == pytest.approx(exact["calibration_mean_abs_error"], abs=0.02)
    if n >= 2_500:   # equal-count deciles split at bin edges: ten of about a tenth each
        assert [row["decile"] for row in binned["calibration"]] == list(range(1, 11))
        assert all(abs(row["count"] - n / 10) <= n * 0.02 for row in binned["calibration"])


def test_performance_report_from_bins_matches_rows_per_period_and_version() -> None:
    from prediction_log.outcomes import Labelled

    ts, versions, probability, denied, defaulted = _decisions(20_000, seed=7)
    threshold = np.full(len(ts), 0.3)
    rows = performance(Labelled(ts, versions, probability, threshold, defaulted), "week", lambda v: None)
    bins = performance(of_rows(ts, versions, probability, denied, defaulted), "week", lambda v: None)
    assert bins["labelled"] == rows["labelled"] == 20_000
    assert [(p["period_start"], p["model_version"], p["labelled"], p["cost"]) for p in bins["periods"]] == \
        [(p["period_start"], p["model_version"], p["labelled"], p["cost"]) for p in rows["periods"]]
    for version, figures in rows["model_versions"].items():
        assert abs(bins["model_versions"][version]["auc"] - figures["auc"]) <= \
            bins["model_versions"][version]["auc_resolution"]
