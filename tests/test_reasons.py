"""Reason codes: contributions add up to the raw score; a constructed high-risk applicant gets the right reasons."""

from __future__ import annotations

import numpy as np

from core.artifacts import ONNX_FILE, resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import reference_applicants
from models.onnx_classifier import OnnxBinaryClassifier
from models.reasons import ReasonCoder

MODEL_DIR = resolve_model_dir(None)


def test_contributions_plus_base_value_are_the_raw_score_and_match_onnx() -> None:
    rows = reference_applicants().to_numpy(dtype=np.float64)[:500]
    coder = ReasonCoder(MODEL_DIR)
    contributions = coder.contributions(rows)
    raw = coder.booster.predict(rows.astype(np.float32).astype(np.float64), raw_score=True)
    assert np.abs(contributions.sum(axis=1) - raw).max() < 1e-9
    onnx = OnnxBinaryClassifier(MODEL_DIR / ONNX_FILE).predict_proba(rows)
    assert np.abs(1 / (1 + np.exp(-raw)) - onnx).max() < 1e-5


def test_high_risk_applicant_is_told_the_features_that_raise_the_risk() -> None:
    median = reference_applicants().median()
    risky = median.copy()
    risky[["EXT_SOURCES_MEAN", "EXT_SOURCE_2", "EXT_SOURCE_3"]] = [0.08, 0.1, 0.08]
    risky["EXT_SOURCES_WEIGHTED"] = 0.25
    risky["DAYS_BIRTH"] = -8000                       # young applicant
    explanation = ReasonCoder(MODEL_DIR).explain(risky[list(FEATURE_NAMES)].to_numpy()[None, :])[0]
    named = [r.feature for r in explanation.reasons]
    assert named[0] in {"EXT_SOURCES_MEAN", "EXT_SOURCE_3", "EXT_SOURCE_2", "EXT_SOURCES_WEIGHTED"}
    assert "EXT_SOURCES_MEAN" in named
    assert all(r.contribution > 0 for r in explanation.reasons)
    assert [r.contribution for r in explanation.reasons] == sorted((r.contribution for r in explanation.reasons),
                                                                   reverse=True)
    assert all(r.text for r in explanation.reasons)
    assert (
        explanation.raw_score
        > ReasonCoder(MODEL_DIR).explain(median[list(FEATURE_NAMES)].to_numpy()[None, :])[0].raw_score
    )
