"""Scorer deployment: ONNX Runtime over blocks of rows, micro-batched across callers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from core.artifacts import CARD_FILE, LIGHTGBM_FILE, ONNX_FILE, load_card, resolve_model_dir
from core.features import N_FEATURES
from core.settings import ChallengerConfig, ScorerConfig
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


def load_model(folder: Path, threshold: float | None, intra_op_threads: int) -> _ActiveModel:
    """A model folder: ``model.onnx`` with its card (version, threshold) and, if present, the LightGBM file for
    reason codes. Any binary classifier over the ten features will do: without a card the folder's name is
    the version and ``threshold`` must be given."""
    if (folder / CARD_FILE).exists():
        card = load_card(folder)
    elif threshold is None:
        raise ValueError(f"{folder} has no {CARD_FILE}: set a threshold for it in the config")
    else:
        card = {"version": folder.name, "threshold": {"value": threshold}, "card": None}
    classifier = OnnxBinaryClassifier(folder / ONNX_FILE, intra_op_threads)
    classifier.predict_proba(np.zeros((1, N_FEATURES)))  # warm up before taking traffic
    reasons = ReasonCoder(folder) if (folder / LIGHTGBM_FILE).exists() else None
    value = threshold if threshold is not None else float(card["threshold"]["value"])
    return _ActiveModel(classifier, card["version"], value, card, reasons)


@serve.deployment
class Scorer:
    """Holds one ONNX session; ``score`` concatenates the blocks of many callers into one run.

    The same class serves the champion (``Scorer``) and the optional ``Challenger`` deployment
    (``challenger=True``: its user_config is a ``ChallengerConfig``, and with mode ``disabled`` no model)."""

    def __init__(self, challenger: bool = False) -> None:
        bind_replica_servers_to_loopback()
        self.challenger = challenger
        self._active: _ActiveModel | None = None
        self._config: ScorerConfig | None = None
        self.metrics = ScorerMetrics()

    def _ensure_loaded(self) -> _ActiveModel:
        """Serve calls ``reconfigure`` before traffic when user_config is set; else load defaults."""
        if self._config is None:
            self.reconfigure({})
        if self._active is None:
            raise LookupError("the challenger is disabled: no model loaded")
        return self._active

    def routing(self) -> dict[str, Any]:
        """What the ingresses need to use this challenger: mode, share, bounds, version (polled, not per request)."""
        if self._config is None:
            self.reconfigure({})
        config = self._config
        if not isinstance(config, ChallengerConfig) or self._active is None:
            return {"mode": "disabled"}
        return {"mode": config.mode, "canary_percent": config.canary_percent, "timeout_s": config.timeout_s,
                "max_pending_blocks": config.max_pending_blocks, "version": self._active.version}

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load the configured model (if it changed) and apply batching parameters."""
        config = (ChallengerConfig if self.challenger else ScorerConfig).model_validate(user_config or {})
        previous = self._config
        if config.model is None:
            self._active = None   # a disabled challenger holds no model
        elif previous is None or self._active is None or (config.model, config.threshold, config.intra_op_threads) \
                != (previous.model, previous.threshold, previous.intra_op_threads):
            self._active = load_model(resolve_model_dir(config.model), config.threshold,
                                      config.intra_op_threads)  # atomic swap
            logger.info("scorer: model %s active, threshold %.6f", self._active.version, self._active.threshold)
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
