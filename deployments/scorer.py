"""Scorer deployment: ONNX Runtime over blocks of rows, micro-batched across callers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ray import serve

from core.artifacts import LIGHTGBM_FILE, ONNX_FILE, load_card, resolve_model_dir
from core.features import N_FEATURES
from core.settings import ScorerConfig
from deployments.http.backend import Scored
from deployments.loopback import bind_replica_servers_to_loopback
from deployments.metrics import ScorerMetrics
from models.onnx_classifier import OnnxBinaryClassifier
from models.reasons import ReasonCoder

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class _ActiveModel:
    classifier: OnnxBinaryClassifier
    version: str
    threshold: float
    card: dict[str, Any]
    reasons: ReasonCoder | None
    """TreeSHAP reason codes from the LightGBM model next to the ONNX file (None if it is missing)."""


@serve.deployment
class Scorer:
    """Holds one ONNX session; ``score`` concatenates the blocks of many callers into one run."""

    def __init__(self) -> None:
        bind_replica_servers_to_loopback()
        self._active: _ActiveModel | None = None
        self._config: ScorerConfig | None = None
        self.metrics = ScorerMetrics()

    def _ensure_loaded(self) -> _ActiveModel:
        """Serve calls ``reconfigure`` before traffic when user_config is set; else load defaults."""
        if self._active is None:
            self.reconfigure({})
        assert self._active is not None
        return self._active

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load the configured model (if it changed) and apply batching parameters."""
        config = ScorerConfig.model_validate(user_config or {})
        previous = self._config
        if previous is None or (config.model, config.threshold, config.intra_op_threads) != (
            previous.model, previous.threshold, previous.intra_op_threads):
            folder = resolve_model_dir(config.model)
            card = load_card(folder)
            classifier = OnnxBinaryClassifier(folder / ONNX_FILE, config.intra_op_threads)
            classifier.predict_proba(np.zeros((1, N_FEATURES)))  # warm up before taking traffic
            threshold = config.threshold if config.threshold is not None else float(card["threshold"]["value"])
            reasons = ReasonCoder(folder) if (folder / LIGHTGBM_FILE).exists() else None
            self._active = _ActiveModel(classifier, card["version"], threshold, card, reasons)  # atomic swap
            logger.info("scorer: model %s active, threshold %.6f", card["version"], threshold)
        self.score.set_max_batch_size(config.max_batch_size)
        self.score.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self._config = config

    @serve.batch  # sizes come from ScorerConfig through reconfigure
    async def score(self, blocks: list[np.ndarray]) -> list[Scored]:
        """Score each caller's ``(n_i, 10)`` block in one ONNX run; same order back."""
        active = self._ensure_loaded()
        sizes = [len(b) for b in blocks]
        self.metrics.run(sum(sizes), len(blocks))
        probabilities = active.classifier.predict_proba(np.concatenate(blocks) if len(blocks) > 1 else blocks[0])
        parts = np.split(probabilities, np.cumsum(sizes)[:-1])
        return [Scored(p, active.version, active.threshold) for p in parts]

    async def score_explained(self, block: np.ndarray) -> tuple[Scored, list[dict[str, Any]]]:
        """Score and explain one block with the same model; only for ``explain=true`` requests.

        Kept off the batched ``score`` path; the TreeSHAP work runs in a thread so the
        replica's event loop keeps serving ``score`` calls.
        """
        active = self._ensure_loaded()
        if active.reasons is None:
            raise LookupError(f"model {active.version} has no LightGBM file for explanations")
        probabilities = active.classifier.predict_proba(block)
        explanations = await asyncio.to_thread(active.reasons.explain, block)
        return Scored(probabilities, active.version, active.threshold), [asdict(e) for e in explanations]

    def model_card(self) -> dict[str, Any]:
        """The active model card, with the threshold in force."""
        active = self._ensure_loaded()
        return active.card | {"threshold_in_force": active.threshold}
