"""Reason codes for decisions: TreeSHAP contributions from the LightGBM model saved with the ONNX artifact.

For each applicant, LightGBM's ``pred_contrib`` gives one contribution per feature (log-odds)
plus the base value; they add up to the model's raw score. The principal reasons for a
denial are the features that pushed the default risk up the most, with the texts of
``core.features`` (adverse-action notices).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from core.artifacts import LIGHTGBM_FILE
from core.features import AGE_FEATURE, FEATURE_NAMES, FEATURES, is_elderly

_AGE = FEATURE_NAMES.index(AGE_FEATURE)


@dataclass(frozen=True)
class Reason:
    feature: str
    contribution: float
    """Log-odds this feature adds to the default risk (positive = raises it)."""
    text: str


@dataclass(frozen=True)
class Explanation:
    base_value: float
    raw_score: float
    contributions: dict[str, float]
    reasons: list[Reason]
    """Features that raise the risk, largest first (at most ``top``)."""


class ReasonCoder:
    """Explains rows of the ten features with a version folder's LightGBM model."""

    def __init__(self, model_dir: Path, top: int = 4) -> None:
        self.booster = lgb.Booster(model_file=str(model_dir / LIGHTGBM_FILE))
        self.top = top

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """``(n, 11)``: per-feature contributions then the base value (float32 inputs, as ONNX sees them)."""
        return self.booster.predict(np.asarray(rows, dtype=np.float32).astype(np.float64), pred_contrib=True)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(default) by LightGBM itself (float32 inputs, as ONNX sees them): the parity check at load."""
        return self.booster.predict(np.asarray(rows, dtype=np.float32).astype(np.float64))

    def explain(self, rows: np.ndarray) -> list[Explanation]:
        """Contributions and principal reasons per row; age is never a reason for an applicant aged 62 or
        older (Regulation B), whatever its contribution."""
        result = []
        elderly = is_elderly(np.asarray(rows)[:, _AGE])
        for values, old in zip(self.contributions(rows), elderly):
            per_feature = {f.name: float(v) for f, v in zip(FEATURES, values[:-1])}
            raising = sorted(((v, f) for f, v in zip(FEATURES, values[:-1])
                              if v > 0 and not (old and f.name == AGE_FEATURE)), key=lambda p: -p[0])
            result.append(Explanation(
                base_value=float(values[-1]), raw_score=float(values.sum()), contributions=per_feature,
                reasons=[Reason(f.name, float(v), f.reason) for v, f in raising[:self.top]]))
        return result
