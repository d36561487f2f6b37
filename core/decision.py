"""The credit decision rule, defined once: deny when the default probability is at or above the threshold.

Training (threshold search, model card), the ingress, monitoring baselines and the dashboard all
import it, so the rule can never differ between what is trained, served, monitored and shown.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np

APPROVED: Literal["approved"] = "approved"
DENIED: Literal["denied"] = "denied"


@overload
def is_denied(probability: float, threshold: float) -> bool: ...
@overload
def is_denied(probability: np.ndarray, threshold: float | np.ndarray) -> np.ndarray: ...


def is_denied(probability: float | np.ndarray, threshold: float | np.ndarray) -> bool | np.ndarray:
    """``probability >= threshold`` (element-wise for arrays): 1/True = denied (predicted default)."""
    return probability >= threshold


def decision_label(denied: bool) -> str:
    """The word the API and the log use for a decision."""
    return DENIED if denied else APPROVED
