"""Disparate-impact figures per group, with Fairlearn's ``MetricFrame`` (no hand-written group arithmetic).

Per group of one attribute: decisions, approval rate and the **adverse-impact ratio** (its approval rate over
the most-favoured group's: the four-fifths rule flags a ratio under 0.8), and where outcomes are known the
false-negative rate (defaulters approved), the false-positive rate (good borrowers denied), AUC, and
calibration (mean predicted default probability beside the observed default rate). Age bands come from the
features themselves; other attributes from group membership the lender posts (``prediction_log.groups``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np
from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import roc_auc_score

from core.features import ELDERLY_AGE_YEARS

MIN_RATIO = 0.8
"""The four-fifths rule (EEOC Uniform Guidelines, used for credit by the CFPB's and lenders' practice)."""
MIN_DECISIONS = 100
"""Groups with fewer decisions in the window are shown, never alerted on (their rate is noise)."""
AGE_ATTRIBUTE = "age_band"
ELDERLY_BAND = f"{ELDERLY_AGE_YEARS} and over"
_BANDS = ((25, "under 25"), (40, "25-39"), (ELDERLY_AGE_YEARS, f"40-{ELDERLY_AGE_YEARS - 1}"),
          (math.inf, ELDERLY_BAND))


def age_bands(days_birth: np.ndarray) -> np.ndarray:
    """The age band of each applicant (``DAYS_BIRTH`` counts days back, negative)."""
    years = -np.asarray(days_birth, dtype=np.float64) / 365.25
    edges = np.array([b for b, _ in _BANDS[:-1]])
    return np.array([label for _, label in _BANDS], dtype=object)[np.searchsorted(edges, years, side="right")]


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else float("nan")


def _mean(_y_true: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(y)) if len(y) else float("nan")


def _observed(y_true: np.ndarray, _y: np.ndarray) -> float:
    return float(np.mean(y_true)) if len(y_true) else float("nan")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(value, 6) if isinstance(value, float) else value


def group_figures(group: np.ndarray, denied: np.ndarray, probability: np.ndarray, defaulted: np.ndarray,
                  min_ratio: float = MIN_RATIO, min_decisions: int = MIN_DECISIONS,
                  judged: Collection[str] | None = None) -> dict[str, Any]:
    """Figures per group of one attribute; ``defaulted`` is -1 where the outcome is not known yet. Alerts for the
    groups in ``judged`` (all when None)."""
    approved = (~denied.astype(bool)).astype(int)
    decisions = MetricFrame(metrics={"decisions": count, "approval_rate": selection_rate},
                            y_true=approved, y_pred=approved, sensitive_features=group)
    table = decisions.by_group
    eligible = table[table["decisions"] >= min_decisions]
    favoured = (eligible if len(eligible) else table)["approval_rate"].idxmax()
    best = table.loc[favoured, "approval_rate"]
    groups: dict[str, dict[str, Any]] = {
        str(g): {"decisions": int(row["decisions"]), "approval_rate": float(row["approval_rate"]),
                 "adverse_impact_ratio": float(row["approval_rate"] / best) if best > 0 else None}
        for g, row in table.iterrows()}
    labelled = defaulted >= 0
    if labelled.any():
        y, g = defaulted[labelled].astype(int), group[labelled]
        errors = MetricFrame(metrics={"labelled": count, "false_negative_rate": false_negative_rate,
                                      "false_positive_rate": false_positive_rate},
                             y_true=y, y_pred=denied[labelled].astype(int), sensitive_features=g).by_group
        scores = MetricFrame(metrics={"auc": _auc, "mean_predicted_default": _mean, "observed_default_rate": _observed},
                             y_true=y, y_pred=probability[labelled], sensitive_features=g).by_group
        for name in errors.index:
            groups[str(name)].update({k: float(v) for k, v in errors.loc[name].items()} |
                                     {k: float(v) for k, v in scores.loc[name].items()})
    alerts = [{"group": name, "adverse_impact_ratio": round(f["adverse_impact_ratio"], 4),
               "approval_rate": round(f["approval_rate"], 4), "decisions": f["decisions"]}
              for name, f in groups.items()
              if (judged is None or name in judged) and f["decisions"] >= min_decisions
              and f["adverse_impact_ratio"] is not None
              and f["adverse_impact_ratio"] < min_ratio]
    return {"most_favoured": str(favoured),
            "groups": {name: {k: _clean(v) for k, v in f.items()} for name, f in groups.items()},
            "alerts": alerts}


def fairness(days_birth: np.ndarray, denied: np.ndarray, probability: np.ndarray, defaulted: np.ndarray,
             memberships: dict[str, dict[int, str]], min_ratio: float = MIN_RATIO,
             min_decisions: int = MIN_DECISIONS) -> dict[str, Any]:
    """Every attribute: the age band (from the features) and each posted one (row index → group)."""
    if not len(denied):   # an empty window: nothing to compare
        return {"decisions": 0, "min_ratio": min_ratio, "min_decisions": min_decisions, "attributes": {},
                "alerts": []}
    # Age is a model input, which Regulation B allows an empirically derived system as long as an applicant aged
    # 62 or older is never disfavoured for it (1002.6(b)(2)): that band is judged; the others are shown.
    attributes = {AGE_ATTRIBUTE: group_figures(age_bands(days_birth), denied, probability, defaulted,
                                               min_ratio, min_decisions, judged=(ELDERLY_BAND,))}
    for attribute, by_row in sorted(memberships.items()):
        rows = np.fromiter(by_row.keys(), dtype=np.int64, count=len(by_row))
        if len(rows):
            group = np.array(list(by_row.values()), dtype=object)
            attributes[attribute] = group_figures(group, denied[rows], probability[rows], defaulted[rows],
                                                min_ratio, min_decisions)
    return {"decisions": int(len(denied)), "min_ratio": min_ratio, "min_decisions": min_decisions,
            "attributes": attributes,
            "alerts": [{"attribute": a, **alert} for a, f in attributes.items() for alert in f["alerts"]]}



