"""The training baseline a log window is compared with: the model's reference sample, scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import ONNX_FILE, load_card
from core.decision import is_denied
from core.reference import reference_applicants
from models.onnx_classifier import OnnxBinaryClassifier


@dataclass(frozen=True)
class Baseline:
    model_version: str
    threshold: float
    frame: pd.DataFrame
    """The ten features plus ``probability_default`` as the model scores them."""

    @property
    def approval_rate(self) -> float:
        return float((~is_denied(self.frame["probability_default"].to_numpy(), self.threshold)).mean())


def load_baseline(model_dir: Path) -> Baseline:
    """Reference sample of ``model_dir`` scored by its own ONNX model at its card's threshold."""
    card = load_card(model_dir)
    frame = reference_applicants(str(model_dir))
    model = OnnxBinaryClassifier(model_dir / ONNX_FILE)
    frame["probability_default"] = model.predict_proba(frame.to_numpy(dtype=np.float64))
    return Baseline(card["version"], float(card["threshold"]["value"]), frame)
