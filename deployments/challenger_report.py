"""``GET /challenger``: the shadow challenger against the champion on the same loans.

Agreement and approval rates, the confusion of the two models' decisions, a probability scatter sample, each
model's performance estimated before outcomes (``models.estimated``) on the same decisions, and — for loans whose
outcome is known — each model's realized AUC and cost on exactly those loans with the paired statistics of their
difference (``models.paired``: DeLong, McNemar, cost difference, the smallest gap the sample can detect). From the
decisions' counts (``ShadowedCounts``, what either store answers: AUC within its ``auc_resolution``), or from
the rows themselves (exact: the reference the tests hold the counts to).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deployments.performance import estimated_of, figures_of
from models.paired import paired_evidence
from models.performance import realized
from prediction_log.labelled_bins import LabelledBins, window_bins
from prediction_log.outcomes import Shadowed
from prediction_log.shadowed_counts import SCATTER_POINTS, PairedCells, ShadowedCounts, cells_of_rows

_DECISIONS = (("approved", False), ("denied", True))


def _report(champion: str, challenger: str, confusion: dict[tuple[bool, bool], int], correlation: float | None,
            scatter: tuple[list[float], list[float]], labelled: int,
            realized_pair: tuple[dict[str, Any], dict[str, Any]] | None, cells: PairedCells | None,
            scored_pair: tuple[LabelledBins, LabelledBins] | None) -> dict[str, Any]:
    """One pair's comparison from its counts, whichever way they were made."""
    n = sum(confusion.values())
    return {
        "champion": champion, "challenger": challenger, "decisions": n,
        "agreement_rate": (confusion.get((False, False), 0) + confusion.get((True, True), 0)) / n,
        "approval_rate": {"champion": (confusion.get((False, False), 0) + confusion.get((False, True), 0)) / n,
                          "challenger": (confusion.get((False, False), 0) + confusion.get((True, False), 0)) / n},
        "confusion": {f"champion {a} / challenger {b}": confusion.get((da, db), 0)
                      for a, da in _DECISIONS for b, db in _DECISIONS},
        "probability_correlation": correlation if n > 1 else None,
        "scatter": {"champion": [round(x, 6) for x in scatter[0]], "challenger": [round(x, 6) for x in scatter[1]]},
        "labelled": labelled,
        "realized": None if realized_pair is None else {"champion": _headline(realized_pair[0]),
                                                        "challenger": _headline(realized_pair[1])},
        "statistics": paired_evidence(cells) if cells is not None and cells.loans else None,
        "estimated": None if scored_pair is None else {"champion": _estimated(scored_pair[0]),
                                                       "challenger": _estimated(scored_pair[1])},
    }


def _estimated(bins: LabelledBins) -> dict[str, Any]:
    return estimated_of(bins, np.ones(len(bins), dtype=bool))


def _pair(s: Shadowed, mask: np.ndarray, champion: str, challenger: str) -> dict[str, Any]:
    denied, challenger_denied = s.denied[mask], s.challenger_denied[mask]
    labelled = mask & (s.defaulted >= 0)
    step = max(1, int(mask.sum()) // SCATTER_POINTS)
    picked = np.flatnonzero(mask)[::step][:SCATTER_POINTS]
    confusion = {(da, db): int(np.sum((denied == da) & (challenger_denied == db)))
                 for _, da in _DECISIONS for _, db in _DECISIONS}
    correlation = float(np.corrcoef(s.probability[mask], s.challenger_probability[mask])[0, 1]) \
        if mask.sum() > 1 else None
    y = s.defaulted[labelled]
    realized_pair = (realized(s.probability[labelled], y, s.denied[labelled]),
                     realized(s.challenger_probability[labelled], y, s.challenger_denied[labelled])) \
        if labelled.any() else None
    return _report(champion, challenger, confusion, correlation,
                   (s.probability[picked].tolist(), s.challenger_probability[picked].tolist()), int(labelled.sum()),
                   realized_pair,
                   cells_of_rows(s.probability[labelled], s.challenger_probability[labelled], s.denied[labelled],
                                 s.challenger_denied[labelled], y),
                   (window_bins(champion, s.probability[mask], denied),
                    window_bins(champion, s.challenger_probability[mask], challenger_denied)))


def _all_of(bins: LabelledBins) -> dict[str, Any]:
    return figures_of(bins, np.ones(len(bins), dtype=bool))


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("labelled", "auc", "auc_resolution", "brier", "cost", "cost_per_decision",
                                    "default_rate", "calibration_mean_abs_error")}


def comparison(s: Shadowed | ShadowedCounts) -> dict[str, Any]:
    """One comparison per (champion, challenger) version pair seen in the window."""
    if isinstance(s, ShadowedCounts):
        return {"shadowed": s.shadowed, "pairs": [_report(
            p.champion, p.challenger, p.confusion, p.correlation,
            ([a for a, _ in p.scatter], [b for _, b in p.scatter]), p.labelled,
            (_all_of(p.champion_bins), _all_of(p.challenger_bins))
            if p.champion_bins and p.challenger_bins else None, p.paired,
            (p.champion_scored, p.challenger_scored) if p.champion_scored and p.challenger_scored else None)
            for p in s.pairs]}
    pairs = sorted(set(zip(s.model_version.tolist(), s.challenger_version.tolist())))
    return {"shadowed": len(s), "pairs": [_pair(s, (s.model_version == a) & (s.challenger_version == b), a, b)
                                          for a, b in pairs]}
