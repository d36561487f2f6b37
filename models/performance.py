"""Realized performance of decisions whose outcome is known, and what the model card expects of them.

The same figures the card reports on its holdout (AUC, Brier score, business cost at the threshold),
computed on live decisions, plus calibration per decile of predicted probability: the two together
show concept drift that input-drift reports cannot (inputs unchanged, their relation to default not).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from models.threshold import FN_COST, FP_COST

DECILES = 10


def auc(probability: np.ndarray, defaulted: np.ndarray) -> float | None:
    """ROC AUC as the Mann–Whitney statistic (ties count half): equal to sklearn's ``roc_auc_score``
    without its per-call input checks, which cost 10 ms a group on a per-day report."""
    positives = int(defaulted.sum())
    negatives = len(defaulted) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(probability)
    return float((ranks[defaulted == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def calibration(probability: np.ndarray, defaulted: np.ndarray, bins: int = DECILES) -> list[dict[str, Any]]:
    """Predicted vs observed default rate per decile of predicted probability (equal-count bins)."""
    if len(probability) < bins:
        return []
    order = np.argsort(probability, kind="stable")
    table = []
    for index, part in enumerate(np.array_split(order, bins)):
        table.append({"decile": index + 1, "count": int(len(part)),
                      "probability_low": float(probability[part[0]]),
                      "probability_high": float(probability[part[-1]]),
                      "predicted_default_rate": float(probability[part].mean()),
                      "observed_default_rate": float(defaulted[part].mean())})
    return table


def realized(probability: np.ndarray, defaulted: np.ndarray, denied: np.ndarray) -> dict[str, Any]:
    """Figures of one group of labelled decisions; AUC is null when only one class is present.
    ``denied``: the decisions taken (at the threshold in force for each), whose cost this is."""
    n = len(defaulted)
    return _figures(n, int(defaulted.sum()), float(probability.sum()),
                    float(np.sum((probability - defaulted) ** 2)) if n else 0.0,
                    int(np.sum(~denied & (defaulted == 1))), int(np.sum(denied & (defaulted == 0))),
                    auc(probability, defaulted), 0.0, calibration(probability, defaulted))


def realized_from_bins(probability_bin: np.ndarray, denied: np.ndarray, defaulted: np.ndarray, count: np.ndarray,
                       probability_sum: np.ndarray, probability_sq_sum: np.ndarray, probability_min: np.ndarray,
                       probability_max: np.ndarray) -> dict[str, Any]:
    """``realized`` of decisions counted per probability bin (``prediction_log.labelled_bins``): one entry per
    (bin, denied, defaulted) of the group. Counts, rates, Brier and cost are exact; AUC counts two decisions of
    one bin as a tie, and ``auc_resolution`` (half the share of such pairs) bounds how far that moves it;
    calibration deciles are bins taken in order until a tenth of the decisions is reached."""
    n = int(count.sum())
    positive = defaulted == 1
    bins, code = np.unique(probability_bin, return_inverse=True)
    pos = np.bincount(code, count * positive, minlength=len(bins))
    neg = np.bincount(code, count * ~positive, minlength=len(bins))
    positives, negatives = float(pos.sum()), float(neg.sum())
    area = resolution = None
    if positives and negatives:
        resolution = float(np.sum(0.5 * pos * neg) / (positives * negatives))
        area = float(np.sum(pos * (np.cumsum(neg) - neg)) / (positives * negatives)) + resolution
    sq_error = float(probability_sq_sum.sum() - 2 * probability_sum[positive].sum() + positives)
    table: list[dict[str, Any]] = []
    if n >= DECILES:
        per_bin = pos + neg
        low, high = np.full(len(bins), np.inf), np.full(len(bins), -np.inf)
        np.minimum.at(low, code, probability_min)
        np.maximum.at(high, code, probability_max)
        decile = np.minimum(np.floor((np.cumsum(per_bin) - per_bin / 2) * DECILES / n), DECILES - 1).astype(int)
        p_sum = np.bincount(code, probability_sum, minlength=len(bins))
        for index in np.unique(decile):
            part = decile == index
            size = float(per_bin[part].sum())
            table.append({"decile": int(index) + 1, "count": int(size), "probability_low": float(low[part].min()),
                          "probability_high": float(high[part].max()),
                          "predicted_default_rate": float(p_sum[part].sum() / size),
                          "observed_default_rate": float(pos[part].sum() / size)})
    return _figures(n, int(positives), float(probability_sum.sum()), sq_error,
                    int(count[~denied & positive].sum()), int(count[denied & ~positive].sum()), area, resolution,
                    table)


def _figures(n: int, defaults: int, probability_sum: float, sq_error_sum: float, fn: int, fp: int,
             area: float | None, resolution: float | None, table: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures both ways share, from their sums."""
    cost = FN_COST * fn + FP_COST * fp
    return {
        "labelled": n,
        "default_rate": defaults / n if n else None,
        "mean_probability": probability_sum / n if n else None,
        "auc": area,
        "auc_resolution": resolution if area is not None else None,
        "brier": sq_error_sum / n if n else None,
        "false_negatives": fn, "false_positives": fp,
        "cost": cost, "cost_per_decision": cost / n if n else None,
        "calibration_mean_abs_error": (float(np.mean([abs(r["predicted_default_rate"] - r["observed_default_rate"])
                                                      for r in table])) if table else None),
        "calibration": table,
    }


def card_expectation(card: dict[str, Any], labelled: int) -> dict[str, Any]:
    """What the model card's holdout says these ``labelled`` decisions should show."""
    holdout, rows = card["holdout"], card["data"]["split"]["holdout"]
    per_decision = holdout["cost"] / rows
    return {"auc": holdout["auc"], "brier": holdout["brier"], "default_rate": card["data"]["default_rate"],
            "cost_per_decision": per_decision, "cost": per_decision * labelled}
