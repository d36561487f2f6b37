"""LightGBM → ONNX with onnxmltools (tensor probabilities, no zipmap) and a parity check."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType

from models.onnx_classifier import OnnxBinaryClassifier

INPUT_NAME = "features"
TARGET_OPSET = 15


def _declare_batch_outputs(model: onnx.ModelProto) -> None:
    """Give the outputs a symbolic batch dimension so ORT does not warn on every call."""
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same trees with every split threshold rounded down to a float32 value.

    ONNX tree ensembles compare float32 inputs with float32 thresholds. For a float32
    input x, ``x <= t`` equals ``x <= largest_float32_not_above(t)``, so after this
    rewrite LightGBM (double) and ONNX Runtime (float32) take the same branch on every
    float32 input, and only the float32 summation of leaf values differs.
    """
    # tree_sizes holds byte lengths of the tree blocks, which the rewrite changes: drop it.
    lines = [ln for ln in booster.model_to_string().splitlines() if not ln.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            values = np.array(line.split("=", 1)[1].split(), dtype=np.float64)
            down = values.astype(np.float32)
            down = np.where(down.astype(np.float64) > values, np.nextafter(down, np.float32(-np.inf)), down)
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in down)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def export(model: lgb.Booster, path: Path, n_features: int) -> None:
    """Convert a trained binary booster over ``n_features`` columns and write it to ``path`` (categorical splits
    become ONNX's equality branches over the levels' indices)."""
    onx = onnxmltools.convert_lightgbm(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=TARGET_OPSET,
    )
    _declare_batch_outputs(onx)
    onx.graph.name = "credit_default_lightgbm"  # onnxmltools names graphs with a random uuid
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)  # converter emits them in set order
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    onx.producer_version = ""  # no tool versions in the bytes: same trees, same bytes, same hash
    path.write_bytes(onx.SerializeToString())


def parity(model: lgb.Booster, path: Path, x: np.ndarray) -> float:
    """Max |P_lightgbm - P_onnx| over the rows of ``x``."""
    expected = model.predict(x)
    got = OnnxBinaryClassifier(path, n_features=x.shape[1]).predict_proba(x)
    return float(np.max(np.abs(expected - got)))
