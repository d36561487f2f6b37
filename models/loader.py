"""The one model loader: a model folder checked before it may answer (scorer, challenger, fast tests, yardstick).

Checked, in order, each failure a ``ModelRefused`` naming the problem: the folder exists; the card parses; its
schema declaration is well formed (``core.schema``: the field named) and its monotone directions are the ones
the model was trained and swept with; the threshold in force is a finite number in (0, 1); every artifact the
card lists is a file with the SHA-256 the card records (a replaced ``model.onnx`` would otherwise be logged
under the old version, a missing ``model.txt`` would serve denials without reasons); the ONNX file loads,
takes the schema's features and answers the reference applicants with finite probabilities in [0, 1]; where
the LightGBM file is present, ONNX and LightGBM agree on them within ``PARITY_TOLERANCE`` and the reason
tables equal LightGBM's TreeSHAP; unless told otherwise, the card records a passing monotonicity sweep.

Any other exception raised while checking (a card field of the wrong type, a model of another width or
output type) is a refusal too: a running replica keeps its model. Messages name the folder, never its
absolute path (they are shown by the public ``/health``); the full cause goes to the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.artifacts import CARD_FILE, LIGHTGBM_FILE, ONNX_FILE, REFERENCE_FILE, resolve_model_dir
from core.schema import DEFAULT_SCHEMA, ModelSchema, SchemaError, of_card
from models.onnx_classifier import OnnxBinaryClassifier
from models.reasons import EXACT_TOLERANCE, ReasonCoder

logger = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4
"""Largest |ONNX − LightGBM| probability accepted on the check rows (export measures ~5e-7)."""
CHECK_ROWS = 256


class ModelRefused(ValueError):
    """A model folder that must not serve; the message names the folder and the problem."""


@dataclass(frozen=True)
class LoadedModel:
    classifier: OnnxBinaryClassifier
    version: str
    threshold: float
    card: dict[str, Any]
    reasons: ReasonCoder | None
    """TreeSHAP reason codes from the LightGBM model next to the ONNX file (None if it is missing)."""
    schema: ModelSchema = DEFAULT_SCHEMA
    """What a request holds and the model reads (the card's ``schema`` block; the ten features without one)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _card(folder: Path, threshold: float | None) -> dict[str, Any]:
    if not (folder / CARD_FILE).exists():
        if threshold is None:
            raise ModelRefused(f"{folder.name} has no {CARD_FILE}: set a threshold for it in the config")
        return {"version": folder.name, "threshold": {"value": threshold}, "card": None}
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        card["version"], card["threshold"]["value"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRefused(f"{folder.name}/{CARD_FILE}: not a model card ({type(exc).__name__}: {exc})") from None
    return card


def _threshold(folder: Path, card: dict[str, Any], override: float | None) -> float:
    value = override if override is not None else card["threshold"]["value"]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ModelRefused(f"{folder.name}: threshold {value!r} is not a number") from None
    if not (math.isfinite(number) and 0 < number < 1):
        raise ModelRefused(f"{folder.name}: threshold {value!r} is not in (0, 1)")
    return number


def _check_artifacts(folder: Path, card: dict[str, Any]) -> None:
    for name, expected in (card.get("artifacts") or {}).items():
        path = folder / name
        if not path.is_file():
            raise ModelRefused(f"{folder.name}/{name}: listed on the model card but "
                               + ("not a file" if path.exists() else "missing"))
        if sha256_of(path) != expected:
            raise ModelRefused(
                f"{folder.name}/{name}: SHA-256 differs from the model card's (replaced after training?)"
            )


def _schema(folder: Path, card: dict[str, Any]) -> ModelSchema:
    try:
        schema = of_card(card)
    except SchemaError as exc:
        raise ModelRefused(f"{folder.name}/{CARD_FILE}: {exc}") from None
    trained = (card.get("monotonicity") or {}).get("constraints")
    if isinstance(trained, dict):
        for i, f in enumerate(schema.features):
            if trained.get(f.name, 0) != f.direction:
                raise ModelRefused(
                    f"{folder.name}/{CARD_FILE}: schema.features[{i}].direction: {f.direction} declared for "
                    f"{f.name!r}, but the model was trained and swept with {trained.get(f.name, 0)}"
                )
    return schema


def _check_rows(folder: Path, schema: ModelSchema) -> np.ndarray:
    """Reference applicants of this folder, else (the ten features only) of the latest trained model."""
    source = folder / REFERENCE_FILE
    if not source.exists() and schema.digest == DEFAULT_SCHEMA.digest:
        source = resolve_model_dir(None) / REFERENCE_FILE
    if not source.exists():
        raise ModelRefused(f"{folder.name}: no {REFERENCE_FILE} to check its answers on")
    import pandas as pd

    frame = pd.read_csv(source, nrows=CHECK_ROWS, dtype={f.name: str for f in schema.features if f.kind == "category"})
    return schema.encode(frame)


def _check_answers(folder: Path, classifier: OnnxBinaryClassifier, reasons: ReasonCoder | None,
                   schema: ModelSchema) -> None:
    rows = _check_rows(folder, schema)
    p = classifier.predict_proba(rows)
    if p.shape != (len(rows),) or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ModelRefused(f"{folder.name}/{ONNX_FILE}: answers are not probabilities on the reference applicants")
    if reasons is not None:
        gap = float(np.max(np.abs(p - reasons.probabilities(rows))))
        if gap > PARITY_TOLERANCE:
            raise ModelRefused(
                f"{folder.name}: ONNX and LightGBM differ by {gap:.2e} > {PARITY_TOLERANCE:g} "
                "on the reference applicants"
            )
        gap = reasons.tables_gap(rows)
        if not gap <= EXACT_TOLERANCE:
            raise ModelRefused(
                f"{folder.name}: reason tables and LightGBM's TreeSHAP differ by {gap:.2e} > "
                f"{EXACT_TOLERANCE:g} on the reference applicants"
            )


def _check_monotonicity(folder: Path, card: dict[str, Any]) -> None:
    sweep = card.get("monotonicity") or {}
    if not sweep.get("passed"):
        failing = [n for n, f in (sweep.get("features") or {}).items() if not f.get("passed")]
        raise ModelRefused(
            f"{folder.name}: no passing monotonicity sweep on its card"
            + (f" (against the policy's direction: {', '.join(failing)})" if failing else "")
            + "; set require_monotonicity: false to serve it anyway"
        )


def load_model(
    model: str | Path | None,
    threshold: float | None = None,
    intra_op_threads: int = 1,
    require_monotonicity: bool = True,
) -> LoadedModel:
    """A checked model folder (a version under models/, a path, or None/'latest'), ready to answer."""
    try:
        folder = resolve_model_dir(model)
    except OSError:  # its message names the models folder's path
        raise ModelRefused(f"no model folder {str(model)!r}") from None
    try:
        return _checked(folder, threshold, intra_op_threads, require_monotonicity)
    except ModelRefused:
        raise
    except Exception as exc:  # onnxruntime's, LightGBM's, or what a malformed card makes a check raise: refused
        logger.error("model folder %s refused: %s: %s", folder, type(exc).__name__, exc)
        raise ModelRefused(
            f"{folder.name}: not a servable model folder ({type(exc).__name__} while loading or checking it)"
        ) from None


def _checked(folder: Path, threshold: float | None, intra_op_threads: int, require_monotonicity: bool) -> LoadedModel:
    card = _card(folder, threshold)
    schema = _schema(folder, card)
    value = _threshold(folder, card, threshold)
    _check_artifacts(folder, card)
    if require_monotonicity:
        _check_monotonicity(folder, card)
    try:
        classifier = OnnxBinaryClassifier(folder / ONNX_FILE, intra_op_threads, len(schema))
    except ValueError as exc:
        if "its schema declares" not in str(exc):
            raise
        raise ModelRefused(f"{folder.name}/{ONNX_FILE}: {str(exc).split(': ', 1)[1]}") from None
    reasons = ReasonCoder(folder, schema=schema) if (folder / LIGHTGBM_FILE).exists() else None
    _check_answers(folder, classifier, reasons, schema)
    return LoadedModel(classifier, str(card["version"]), value, card, reasons, schema)
