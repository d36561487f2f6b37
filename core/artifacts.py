"""Where versioned model folders live and how to read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
ONNX_FILE = "model.onnx"
LIGHTGBM_FILE = "model.txt"
CARD_FILE = "model_card.json"
REFERENCE_FILE = "reference_sample.csv.gz"


def latest_version(models_dir: Path = MODELS_DIR) -> str:
    """The version the last training run recorded in ``LATEST``."""
    return (models_dir / "LATEST").read_text().strip()


def resolve_model_dir(model: str | Path | None, models_dir: Path = MODELS_DIR) -> Path:
    """A folder from a version id, a path, or ``None`` (the latest trained version)."""
    if model is None or str(model) in ("", "latest"):
        return models_dir / latest_version(models_dir)
    path = Path(model)
    if path.is_dir():
        return path.resolve()
    candidate = models_dir / str(model)
    if candidate.is_dir():
        return candidate
    raise FileNotFoundError(f"no model folder {model!r} (looked in {models_dir})")


def load_card(model_dir: Path) -> dict[str, Any]:
    """The model card of a version folder."""
    return json.loads((model_dir / CARD_FILE).read_text())
