"""Realistic request bodies: applicants sampled from the active model's reference sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.artifacts import REFERENCE_FILE, resolve_model_dir
from core.features import FEATURE_NAMES, FEATURES


def reference_applicants(model: str | None = None) -> pd.DataFrame:
    """The reference sample's feature columns (training-distribution applicants)."""
    return pd.read_csv(resolve_model_dir(model) / REFERENCE_FILE)[list(FEATURE_NAMES)]


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready request bodies from a frame holding the ten feature columns."""
    return [{f.name: (int(v) if f.dtype == "int" else float(v)) for f, v in zip(FEATURES, row)}
            for row in frame[list(FEATURE_NAMES)].itertuples(index=False)]


def sample_applicants(n: int, seed: int = 0, model: str | None = None) -> list[dict[str, Any]]:
    """``n`` JSON-ready applicants drawn with replacement from the reference sample."""
    frame = reference_applicants(model)
    return json_rows(frame.iloc[np.random.default_rng(seed).integers(0, len(frame), n)])
