"""ONNX Runtime wrapper for any binary classifier over a row of float features (the default model's ten unless
told)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.features import N_FEATURES


class OnnxBinaryClassifier:
    """Scores rows of ``n_features`` float32 features; returns P(class 1).

    Finds the input name from the model and accepts either a probability tensor
    (``zipmap=False``) or onnxmltools' default zipmap output (a sequence of maps).
    """

    def __init__(self, path: str | Path, intra_op_threads: int = 1, n_features: int = N_FEATURES) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no per-call shape warnings
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one input tensor, found {len(inputs)}")
        self.input_name = inputs[0].name
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != n_features:
            raise ValueError(f"{self.path}: model takes {width} features, its schema declares {n_features}")
        self.n_features = n_features
        self.probability_output = self._find_probability_output()

    def _find_probability_output(self) -> str:
        outputs = self.session.get_outputs()
        for out in outputs:
            if "prob" in out.name.lower():
                return out.name
        if len(outputs) == 2:
            return outputs[1].name
        raise ValueError(f"{self.path}: no probability output among {[o.name for o in outputs]}")

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """P(default) for an ``(n, n_features)`` array; float64 result of length n."""
        x = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, self.n_features)
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        (out,) = self.session.run([self.probability_output], {self.input_name: x})
        if isinstance(out, list):  # zipmap: [{0: p0, 1: p1}, ...]
            return np.fromiter((m[1] for m in out), dtype=np.float64, count=len(out))
        probs = np.asarray(out, dtype=np.float64)
        return probs[:, 1] if probs.ndim == 2 else probs
