"""Reason codes for decisions: TreeSHAP contributions from the LightGBM model saved with the ONNX artifact.

For each applicant, one contribution per feature (log-odds) plus the base value, adding up to the
model's raw score: LightGBM's ``pred_contrib``, read from tables built once per model
(``models.tree_tables``, exact and an order of magnitude cheaper), or ``pred_contrib`` itself for a model
the tables cannot represent. The principal reasons for a denial are the features that pushed the default
risk up the most, with the reason texts of the model's schema (its card: the adverse-action statements); a
category's contribution is its attribute's, so the reason names the attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from core.artifacts import LIGHTGBM_FILE
from core.schema import DEFAULT_SCHEMA, ModelSchema
from models.tree_tables import TreeTables, UnsupportedModel

EXACT_TOLERANCE = 1e-9
"""Largest |tables − pred_contrib| per contribution accepted when a model loads (measured ~1e-14)."""


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
    """Explains rows of a schema's features with a version folder's LightGBM model."""

    def __init__(self, model_dir: Path, top: int = 4, schema: ModelSchema = DEFAULT_SCHEMA) -> None:
        self.booster = lgb.Booster(model_file=str(model_dir / LIGHTGBM_FILE))
        self.top = top
        self.names = list(schema.names)
        self.texts = [f.reason for f in schema.features]
        self.age = schema.age
        self._age = schema.age_index
        self.tables: TreeTables | None = None
        self.fallback: str | None = None
        """Why contributions come from ``pred_contrib`` rather than the tables (None when they do not); the scorer
        logs it and sets its gauge when the model becomes active."""
        try:
            self.tables = TreeTables(self.booster)
        except UnsupportedModel as exc:
            self.fallback = str(exc)

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """``(n, features + 1)``: per-feature contributions then the base value (float32 inputs, as ONNX sees them)."""
        values = np.asarray(rows, dtype=np.float32).astype(np.float64)
        return self.tables.contributions(values) if self.tables is not None else self.tree_shap(values)

    def tree_shap(self, rows: np.ndarray) -> np.ndarray:
        """LightGBM's own ``pred_contrib``. One thread per call: the scorer explains several callers' blocks at
        once, and 2 cores hold no more."""
        return np.asarray(self.booster.predict(rows, pred_contrib=True, num_threads=1))

    def tables_gap(self, rows: np.ndarray) -> float:
        """Largest |tables − pred_contrib| over ``rows`` (0 without tables): the load-time exactness check."""
        if self.tables is None:
            return 0.0
        values = np.asarray(rows, dtype=np.float32).astype(np.float64)
        return float(np.max(np.abs(self.tables.contributions(values) - self.tree_shap(values)), initial=0.0))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(default) by LightGBM itself (float32 inputs, as ONNX sees them): the parity check at load."""
        return np.asarray(self.booster.predict(np.asarray(rows, dtype=np.float32).astype(np.float64)))

    def explain(self, rows: np.ndarray) -> list[Explanation]:
        """Contributions and principal reasons per row (``explain_dicts`` as objects)."""
        return [Explanation(e["base_value"], e["raw_score"], e["contributions"], [Reason(**r) for r in e["reasons"]])
                for e in self.explain_dicts(rows)]

    def explain_dicts(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Per row, the fields of an ``Explanation`` as plain dicts (what the log and the API carry), ranked with
        NumPy over the whole block: the reasons of every denial are computed on the scoring path, so the work
        per row beyond TreeSHAP itself is a few list operations. Age is never a reason for an applicant aged 62
        or older (Regulation B), whatever its contribution."""
        values = self.contributions(rows)
        per_feature = values[:, :-1]
        raising = per_feature > 0
        if self.age is not None and self._age is not None:
            raising[:, self._age] &= ~self.age.is_elderly(np.asarray(rows)[:, self._age])
        order = np.argsort(np.where(raising, -per_feature, np.inf), axis=1, kind="stable")[:, :self.top]
        order = np.where(np.take_along_axis(raising, order, axis=1), order, -1)
        out = []
        for v, raw, ranked in zip(values.tolist(), values.sum(axis=1).tolist(), order.tolist()):
            out.append({"base_value": v[-1], "raw_score": raw, "contributions": dict(zip(self.names, v)),
                        "reasons": [{"feature": self.names[j], "contribution": v[j], "text": self.texts[j]}
                                    for j in ranked if j >= 0]})
        return out
