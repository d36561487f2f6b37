"""``GET /challenger``: the shadow challenger against the champion on the same loans.

Agreement and approval rates, the confusion of the two models' decisions, a probability scatter sample,
and — for loans whose outcome is known — each model's realized AUC and cost on exactly those loans.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.performance import realized
from prediction_log.outcomes import Shadowed

SCATTER_POINTS = 500


def _pair(s: Shadowed, mask: np.ndarray, champion: str, challenger: str) -> dict[str, Any]:
    denied, challenger_denied = s.denied[mask], s.challenger_denied[mask]
    labelled = mask & (s.defaulted >= 0)
    step = max(1, int(mask.sum()) // SCATTER_POINTS)
    picked = np.flatnonzero(mask)[::step][:SCATTER_POINTS]
    report: dict[str, Any] = {
        "champion": champion, "challenger": challenger, "decisions": int(mask.sum()),
        "agreement_rate": float(np.mean(denied == challenger_denied)),
        "approval_rate": {"champion": float(np.mean(~denied)), "challenger": float(np.mean(~challenger_denied))},
        "confusion": {f"champion {a} / challenger {b}": int(np.sum((denied == da) & (challenger_denied == db)))
                      for a, da in (("approved", False), ("denied", True))
                      for b, db in (("approved", False), ("denied", True))},
        "probability_correlation": (float(np.corrcoef(s.probability[mask], s.challenger_probability[mask])[0, 1])
                                    if mask.sum() > 1 else None),
        "scatter": {"champion": s.probability[picked].round(6).tolist(),
                    "challenger": s.challenger_probability[picked].round(6).tolist()},
        "labelled": int(labelled.sum()),
        "realized": None,
    }
    if labelled.any():
        y = s.defaulted[labelled]
        report["realized"] = {
            "champion": _headline(realized(s.probability[labelled], y, s.denied[labelled])),
            "challenger": _headline(realized(s.challenger_probability[labelled], y, s.challenger_denied[labelled])),
        }
    return report


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("labelled", "auc", "brier", "cost", "cost_per_decision", "default_rate")}


def comparison(s: Shadowed) -> dict[str, Any]:
    """One comparison per (champion, challenger) version pair seen in the window."""
    pairs = sorted(set(zip(s.model_version.tolist(), s.challenger_version.tolist())))
    return {"shadowed": len(s), "pairs": [_pair(s, (s.model_version == a) & (s.challenger_version == b), a, b)
                                          for a, b in pairs]}
