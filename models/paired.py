"""Two models scored on the same labelled loans: how sure the difference between them is.

A shadow challenger scores exactly the champion's applicants, so every comparison is paired: DeLong's test for the
difference of two correlated AUCs (DeLong, DeLong & Clarke-Pearson 1988: the AUC as a mean of per-loan placement
values, their covariance across the two models), McNemar's exact test on the loans one model decides right and the
other wrong, and the paired difference in business cost per loan with its normal interval. ``min_detectable_gap`` is
the smallest AUC difference the sample would find with 80 % power at the 5 % level, from the same standard error.

Inputs are weighted cells: one entry per distinct (champion score, challenger score, decisions, outcome) with its
count. Scores only need their order, so the probability bins a store counts (``prediction_log.labelled_bins``) serve
as well as exact probabilities (two loans in one bin are a tie, as in the realized AUC).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from scipy.stats import binomtest, norm

from models.threshold import FN_COST, FP_COST

LEVEL = 0.95
POWER = 0.80


class PairedCells(Protocol):
    """Labelled loans scored by both models: parallel arrays, one entry per cell (``prediction_log.shadowed_counts``
    keeps them so)."""

    @property
    def champion_score(self) -> np.ndarray: ...   # any ordered number: a probability, or its bin
    @property
    def challenger_score(self) -> np.ndarray: ...
    @property
    def champion_denied(self) -> np.ndarray: ...  # bool
    @property
    def challenger_denied(self) -> np.ndarray: ...
    @property
    def defaulted(self) -> np.ndarray: ...        # 0/1
    @property
    def count(self) -> np.ndarray: ...            # int64


def _placements(score: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: for each positive cell the share of negatives scored below it (ties half), for
    each negative cell the share of positives scored above it."""
    def share_below(of: np.ndarray, among: np.ndarray, among_weight: np.ndarray) -> np.ndarray:
        order = np.argsort(among, kind="stable")
        sorted_scores, cumulative = among[order], np.r_[0.0, np.cumsum(among_weight[order])]
        below = cumulative[np.searchsorted(sorted_scores, of, side="left")]
        at_or_below = cumulative[np.searchsorted(sorted_scores, of, side="right")]
        return (below + at_or_below) / 2 / cumulative[-1]

    pos_scores, neg_scores = score[positive], score[~positive]
    v10 = share_below(pos_scores, neg_scores, weight[~positive])
    v01 = 1.0 - share_below(neg_scores, pos_scores, weight[positive])
    return v10, v01


def _weighted_cov(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> float:
    n = weight.sum()
    mean_a, mean_b = np.sum(weight * a) / n, np.sum(weight * b) / n
    return float(np.sum(weight * (a - mean_a) * (b - mean_b)) / (n - 1))


def delong(cells: PairedCells) -> dict[str, Any] | None:
    """Each model's AUC, the challenger's minus the champion's with its standard error, interval and two-sided
    p-value, and the smallest gap the sample can detect; None without both outcomes (two of each at least)."""
    positive = cells.defaulted == 1
    weight = cells.count.astype(np.float64)
    m, n = weight[positive].sum(), weight[~positive].sum()
    if m < 2 or n < 2:
        return None
    a10, a01 = _placements(cells.champion_score, positive, weight)
    b10, b01 = _placements(cells.challenger_score, positive, weight)
    wp, wn = weight[positive], weight[~positive]
    auc_a, auc_b = float(np.sum(wp * a10) / m), float(np.sum(wp * b10) / m)
    variance = ((_weighted_cov(a10, a10, wp) + _weighted_cov(b10, b10, wp) - 2 * _weighted_cov(a10, b10, wp)) / m
                + (_weighted_cov(a01, a01, wn) + _weighted_cov(b01, b01, wn) - 2 * _weighted_cov(a01, b01, wn)) / n)
    se = float(np.sqrt(max(variance, 0.0)))
    difference = auc_b - auc_a
    z = norm.ppf(0.5 + LEVEL / 2)
    return {
        "champion_auc": auc_a, "challenger_auc": auc_b, "difference": difference, "standard_error": se,
        "interval": [float(difference - z * se), float(difference + z * se)],
        "p_value": float(2 * norm.sf(abs(difference) / se)) if se > 0 else None,
        "min_detectable_gap": float((z + norm.ppf(POWER)) * se),
        "defaults": int(m), "repayments": int(n),
    }


def mcnemar(cells: PairedCells) -> dict[str, Any]:
    """The loans one model decided right and the other wrong (a denial is right when the loan defaults), and the exact
    two-sided test that both directions are equally likely (the binomial form of McNemar's test)."""
    champion_right = cells.champion_denied == (cells.defaulted == 1)
    challenger_right = cells.challenger_denied == (cells.defaulted == 1)
    only_champion = int(cells.count[champion_right & ~challenger_right].sum())
    only_challenger = int(cells.count[challenger_right & ~champion_right].sum())
    discordant = only_champion + only_challenger
    return {"only_champion_right": only_champion, "only_challenger_right": only_challenger,
            "p_value": float(binomtest(only_champion, discordant, 0.5).pvalue) if discordant else None}


def loan_cost(denied: np.ndarray, defaulted: np.ndarray) -> np.ndarray:
    """A decision's business cost (``models.threshold``): an approved default, a denied repayment."""
    return np.where(~denied & (defaulted == 1), FN_COST, 0) + np.where(denied & (defaulted == 0), FP_COST, 0)


def cost_difference(cells: PairedCells) -> dict[str, Any] | None:
    """The challenger's cost per loan minus the champion's on the same loans, with its normal interval."""
    weight = cells.count.astype(np.float64)
    n = weight.sum()
    if n < 2:
        return None
    d = (loan_cost(cells.challenger_denied, cells.defaulted) - loan_cost(cells.champion_denied, cells.defaulted)
         ).astype(np.float64)
    mean = float(np.sum(weight * d) / n)
    se = float(np.sqrt(_weighted_cov(d, d, weight) / n))
    z = norm.ppf(0.5 + LEVEL / 2)
    return {"per_loan": mean, "standard_error": se, "interval": [float(mean - z * se), float(mean + z * se)]}


def paired_evidence(cells: PairedCells) -> dict[str, Any]:
    """DeLong, McNemar and the cost difference of the same labelled loans."""
    return {"labelled": int(cells.count.sum()), "level": LEVEL, "auc": delong(cells), "mcnemar": mcnemar(cells),
            "cost": cost_difference(cells)}
