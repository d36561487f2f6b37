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
import pandas as pd
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import roc_auc_score

from core.features import AGE_ATTRIBUTE, ELDERLY_BAND, age_bands

MIN_RATIO = 0.8
"""The four-fifths rule (EEOC Uniform Guidelines, used for credit by the CFPB's and lenders' practice)."""
MIN_DECISIONS = 100
"""Groups with fewer decisions in the window are shown, never alerted on (their rate is noise)."""


def _auc(y_true: np.ndarray, y_score: np.ndarray, sample_weight: np.ndarray) -> float:
    return float(roc_auc_score(y_true, y_score, sample_weight=sample_weight)) if len(np.unique(y_true)) == 2 \
        else float("nan")


def _decisions(_y_true: np.ndarray, _y: np.ndarray, sample_weight: np.ndarray) -> float:
    return float(np.sum(sample_weight))


def _mean(_y_true: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> float:
    return float(np.average(y, weights=sample_weight)) if np.sum(sample_weight) else float("nan")


def _observed(y_true: np.ndarray, _y: np.ndarray, sample_weight: np.ndarray) -> float:
    return float(np.average(y_true, weights=sample_weight)) if np.sum(sample_weight) else float("nan")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(value, 6) if isinstance(value, float) else value


def _weighted(metrics: dict[str, Any], weight: np.ndarray, **data: Any) -> Any:
    """Fairlearn's ``MetricFrame`` of ``metrics``, each given the decisions' counts as ``sample_weight``."""
    data["sensitive_features"] = pd.Series(data["sensitive_features"], name="group")   # one entry: still 1-D
    return MetricFrame(metrics=metrics, sample_params={name: {"sample_weight": weight} for name in metrics},
                       **data).by_group


def approval_figures(group: np.ndarray, denied: np.ndarray, weight: np.ndarray,
                     min_decisions: int = MIN_DECISIONS) -> tuple[str, dict[str, dict[str, Any]]]:
    """Decisions, approval rate and adverse-impact ratio per group (against the most favoured group with at least
    ``min_decisions``), and that group."""
    approved = (~denied.astype(bool)).astype(int)
    table = _weighted({"decisions": _decisions, "approval_rate": selection_rate}, weight,
                      y_true=approved, y_pred=approved, sensitive_features=group)
    eligible = table[table["decisions"] >= min_decisions]
    favoured = (eligible if len(eligible) else table)["approval_rate"].idxmax()
    best = table.loc[favoured, "approval_rate"]
    return str(favoured), {
        str(g): {"decisions": int(round(row["decisions"])), "approval_rate": float(row["approval_rate"]),
                 "adverse_impact_ratio": float(row["approval_rate"] / best) if best > 0 else None}
        for g, row in table.iterrows()}


def _judged(favoured: str, groups: dict[str, dict[str, Any]], min_ratio: float, min_decisions: int,
            judged: Collection[str] | None) -> dict[str, Any]:
    """The figures as answered, and the alerts of the groups in ``judged`` (all when None)."""
    alerts = [{"group": name, "adverse_impact_ratio": round(f["adverse_impact_ratio"], 4),
               "approval_rate": round(f["approval_rate"], 4), "decisions": f["decisions"]}
              for name, f in groups.items()
              if (judged is None or name in judged) and f["decisions"] >= min_decisions
              and f["adverse_impact_ratio"] is not None and f["adverse_impact_ratio"] < min_ratio]
    return {"most_favoured": favoured,
            "groups": {name: {k: _clean(v) for k, v in f.items()} for name, f in groups.items()},
            "alerts": alerts}


def group_figures(group: np.ndarray, denied: np.ndarray, probability: np.ndarray, score: np.ndarray,
                  defaulted: np.ndarray, weight: np.ndarray, min_ratio: float = MIN_RATIO,
                  min_decisions: int = MIN_DECISIONS, judged: Collection[str] | None = None) -> dict[str, Any]:
    """Figures per group of one attribute from counted decisions (``weight`` decisions an entry, ``probability``
    their mean probability, ``score`` what orders them for AUC: the probability, or its bin); ``defaulted`` is -1
    where the outcome is not known yet. Alerts for the groups in ``judged`` (all when None)."""
    favoured, groups = approval_figures(group, denied, weight, min_decisions)
    labelled = (defaulted >= 0) & (weight > 0)
    if labelled.any():
        y, g, w = defaulted[labelled].astype(int), group[labelled], weight[labelled]
        errors = _weighted({"labelled": _decisions, "false_negative_rate": false_negative_rate,
                            "false_positive_rate": false_positive_rate}, w,
                           y_true=y, y_pred=denied[labelled].astype(int), sensitive_features=g)
        scores = _weighted({"auc": _auc}, w, y_true=y, y_pred=score[labelled], sensitive_features=g).join(
            _weighted({"mean_predicted_default": _mean, "observed_default_rate": _observed}, w,
                      y_true=y, y_pred=probability[labelled], sensitive_features=g))
        for name in errors.index:
            groups[str(name)].update({k: float(v) for k, v in errors.loc[name].items()} |
                                     {k: float(v) for k, v in scores.loc[name].items()})
            groups[str(name)]["labelled"] = int(round(groups[str(name)]["labelled"]))
    return _judged(favoured, groups, min_ratio, min_decisions, judged)


def same_applicants(group: np.ndarray, denied: np.ndarray, challenger_version: np.ndarray,
                    challenger_denied: np.ndarray, weight: np.ndarray, min_ratio: float, min_decisions: int,
                    judged: Collection[str] | None) -> dict[str, Any]:
    """Per shadow challenger version: its and the champion's approval rates and adverse-impact ratios per group on
    the applicants it shadowed (``challenger_denied`` -1 elsewhere)."""
    out: dict[str, Any] = {}
    for version in sorted(set(challenger_version[challenger_denied >= 0].tolist())):
        shadowed = (challenger_denied >= 0) & (challenger_version == version)
        out[version] = {model: _judged(*approval_figures(group[shadowed], decisions, weight[shadowed], min_decisions),
                                       min_ratio, min_decisions, judged)
                        for model, decisions in (("champion", denied[shadowed]),
                                                 ("challenger", challenger_denied[shadowed] == 1))}
    return out


def fairness_from_counts(attribute: np.ndarray, group: np.ndarray, denied: np.ndarray,
                         challenger_version: np.ndarray, challenger_denied: np.ndarray, defaulted: np.ndarray,
                         probability: np.ndarray, score: np.ndarray, weight: np.ndarray, min_ratio: float = MIN_RATIO,
                         min_decisions: int = MIN_DECISIONS) -> dict[str, Any]:
    """Every attribute counted (``prediction_log.fairness_counts``): the age band and each posted one. A count's AUC
    orders decisions by ``score`` (its probability bin: two decisions in one bin are a tie)."""
    age = attribute == AGE_ATTRIBUTE
    decisions = int(weight[age].sum())
    if not decisions:   # an empty window: nothing to compare
        return {"decisions": 0, "min_ratio": min_ratio, "min_decisions": min_decisions, "attributes": {},
                "alerts": []}
    attributes = {}
    for name in [AGE_ATTRIBUTE, *sorted(set(attribute[~age].tolist()))]:
        rows = attribute == name
        # Age is a model input, which Regulation B allows an empirically derived system as long as an applicant
        # aged 62 or older is never disfavoured for it (1002.6(b)(2)): that band is judged; the others are shown.
        judged = (ELDERLY_BAND,) if name == AGE_ATTRIBUTE else None
        attributes[name] = group_figures(group[rows], denied[rows], probability[rows], score[rows], defaulted[rows],
                                         weight[rows], min_ratio, min_decisions, judged)
        attributes[name]["same_applicants"] = same_applicants(group[rows], denied[rows], challenger_version[rows],
                                                              challenger_denied[rows], weight[rows], min_ratio,
                                                              min_decisions, judged)
    return {"decisions": decisions, "min_ratio": min_ratio, "min_decisions": min_decisions,
            "attributes": attributes,
            "alerts": [{"attribute": a, **alert} for a, f in attributes.items() for alert in f["alerts"]]}


def fairness(days_birth: np.ndarray, denied: np.ndarray, probability: np.ndarray, defaulted: np.ndarray,
             memberships: dict[str, dict[int, str]], min_ratio: float = MIN_RATIO,
             min_decisions: int = MIN_DECISIONS) -> dict[str, Any]:
    """``fairness_from_counts`` of decisions one by one: the age band (from the features) and each posted
    attribute (row index → group)."""
    names, groups, rows = [AGE_ATTRIBUTE] * len(denied), list(age_bands(days_birth)), list(range(len(denied)))
    for attribute, by_row in sorted(memberships.items()):
        names += [attribute] * len(by_row)
        groups += list(by_row.values())
        rows += list(by_row.keys())
    index = np.array(rows, dtype=np.int64)
    return fairness_from_counts(np.array(names, dtype=object), np.array(groups, dtype=object), denied[index],
                                np.full(len(index), "", dtype=object), np.full(len(index), -1, np.int8),
                                defaulted[index], probability[index], probability[index], np.ones(len(index)),
                                min_ratio, min_decisions)
