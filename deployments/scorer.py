"""Scorer deployment: ONNX Runtime over blocks of rows, micro-batched across callers."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from core.decision import is_denied
from core.schema import DEFAULT_SCHEMA, difference
from core.settings import ChallengerConfig, ScorerConfig
from deployments.decisions import denial_reasons
from deployments.loopback import bind_replica_servers_to_loopback
from deployments.metrics import ScorerMetrics
from deployments.scored import Scored
from models.loader import LoadedModel, ModelRefused, load_model
from prediction_log.model_changes import Event, ModelChange, model_change

logger = logging.getLogger("ray.serve")
REASON_THREADS = 2
"""Callers whose denial reasons are computed at once (TreeSHAP releases the GIL; each runs on one thread)."""
AUDIT_RETRY_S = 1.0
"""How often undelivered model-change entries are offered to the log writer again."""
MAX_UNDELIVERED = 1_000
"""Audit entries a replica keeps while the log writer is away (a change a second for a quarter of an hour)."""


def _refusal(exc: Exception) -> str:
    """What ``/health`` (public) says of a refused change: the loader's and the settings' own messages, which name
    the folder or field; for anything else only the exception's type (its text may hold paths)."""
    if isinstance(exc, ValidationError):
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        return f"ValidationError: invalid {fields or 'configuration'}"
    if isinstance(exc, ModelRefused):
        return f"ModelRefused: {exc}"
    return f"{type(exc).__name__} while applying the change (see the scorer's log)"


@serve.deployment
class Scorer:
    """Holds one ONNX session; ``score`` concatenates the blocks of many callers into one run.

    The same class serves the champion (``Scorer``) and the optional ``Challenger`` deployment
    (``challenger=True``: its user_config is a ``ChallengerConfig``, and with mode ``disabled`` no model).
    Every model it starts with, switches to or refuses is an entry of the audit record, which the log writer
    stores (``prediction_log.model_changes``); entries wait here until it has."""

    def __init__(self, challenger: bool = False, log_writer: DeploymentHandle | None = None) -> None:
        bind_replica_servers_to_loopback()
        self.challenger = challenger
        self._log_writer = log_writer
        self._undelivered: list[ModelChange] = []
        self._replica = serve.get_replica_context().replica_id.unique_id
        self._delivery = asyncio.get_event_loop().create_task(self._deliver_changes()) if log_writer else None
        self._reasons_pool = ThreadPoolExecutor(REASON_THREADS, thread_name_prefix="reasons")
        self._active: LoadedModel | None = None
        self.refused: str | None = None
        """Why the last configuration change was refused (None when the last one applied)."""
        self._name = "challenger" if challenger else "scorer"
        self._config: ScorerConfig | None = None
        self.metrics = ScorerMetrics()
        self.schema = DEFAULT_SCHEMA
        """The contract this application's ingress validates requests by: every model it loads must declare it."""

    def _ensure_loaded(self) -> LoadedModel:
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
        """Load the configured model (if it changed) and apply batching; a change that fails its checks is
        refused and the model in force keeps answering (``refused`` says why, in /health and the log)."""
        try:
            config = (ChallengerConfig if self.challenger else ScorerConfig).model_validate(user_config or {})
            active = self._model_for(config)
        except Exception as exc:   # every failure of a change is a refusal: a replica that raised here would stop
            if self._config is None:
                raise   # the first configuration: there is nothing to keep serving
            self.refused = _refusal(exc)
            self.metrics.change_refused.set(1)
            logger.error("%s: change refused, %s keeps answering: %s: %s", self._name, self._describe(),
                         type(exc).__name__, exc)
            asked = user_config or {}
            self._audit("refused", (asked.get("model"), asked.get("threshold")), self.refused,
                        asked.get("change_note"))
            return
        fallback = None if active is None or active.reasons is None else active.reasons.fallback
        if active is not self._active:
            logger.info("%s: model %s active (was %s)", self._name,
                        f"{active.version} threshold {active.threshold:.6f}" if active else "none", self._describe())
            if fallback is not None:
                logger.warning("%s: reasons from LightGBM's pred_contrib, not tables (slower): %s", self._name,
                               fallback)
            self._audit("started" if self._config is None else "applied",
                        None if active is None else (active.version, active.threshold), None, config.change_note)
        self._active = active   # atomic swap: a block is scored by one model
        self.metrics.reasons_fallback.set(0 if fallback is None else 1)
        self._score_batch.set_max_batch_size(config.max_batch_size)
        self._score_batch.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self._config = config
        self.refused = None
        self.metrics.change_refused.set(0)

    def _model_for(self, config: ScorerConfig) -> LoadedModel | None:
        previous = self._config
        if config.model is None:
            return None   # a disabled challenger holds no model
        if previous is None or self._active is None or (config.model, config.threshold, config.intra_op_threads,
                                                        config.require_monotonicity) \
                != (previous.model, previous.threshold, previous.intra_op_threads, previous.require_monotonicity):
            loaded = load_model(config.model, config.threshold, config.intra_op_threads, config.require_monotonicity)
            changed = difference(self.schema, loaded.schema)
            if changed is not None:
                raise ModelRefused(f"{loaded.version}: its schema is not this application's ({changed}); "
                                   "a model with another schema is a new application, not a swap")
            return loaded
        return self._active

    def _audit(self, event: Event, to: tuple[Any, Any] | None, reason: str | None, note: Any) -> None:
        active = self._active
        before = None if active is None else (active.version, active.threshold)
        self._undelivered.append(model_change(event, "Challenger" if self.challenger else "Scorer", self._replica,
                                              before, to, reason, note))

    async def _deliver_changes(self) -> None:
        """Hand audit entries to the log writer until it has stored them (it may start after this replica,
        or its database may be down): retried, and stored once by their id."""
        while True:
            await asyncio.sleep(AUDIT_RETRY_S)
            if self._undelivered:
                await self._deliver_once()

    async def _deliver_once(self) -> None:
        """One delivery of every waiting entry. When it fails, each is offered alone: an entry the store refuses
        while the others store (one it cannot hold) is written whole to this replica's log and dropped, so it
        cannot hold back the entries after it; while the writer is away they all wait, the oldest beyond
        ``MAX_UNDELIVERED`` dropped with an error."""
        assert self._log_writer is not None
        entries = list(self._undelivered)
        try:
            await self._log_writer.record_model_changes.remote(entries)
            del self._undelivered[:len(entries)]
            return
        except Exception as exc:
            logger.warning("%s: %d model-change entries not yet in the audit record (%s: %s)", self._name,
                           len(entries), type(exc).__name__, exc)
        refused: list[ModelChange] = []
        for entry in entries if len(entries) > 1 else []:
            try:
                await self._log_writer.record_model_changes.remote([entry])
                self._undelivered.remove(entry)
            except Exception:
                refused.append(entry)
        if refused and len(refused) < len(entries):
            for entry in refused:
                logger.error("%s: model-change entry the audit store refuses, kept here only: %r", self._name, entry)
                self._undelivered.remove(entry)
        if len(self._undelivered) > MAX_UNDELIVERED:
            dropped = self._undelivered[:-MAX_UNDELIVERED]
            del self._undelivered[:-MAX_UNDELIVERED]
            logger.error("%s: %d model-change entries dropped undelivered (the log writer is away): %r",
                         self._name, len(dropped), dropped)

    async def __del__(self) -> None:
        """At shutdown, one last delivery of what is still undelivered (bounded: the replica must stop)."""
        self._reasons_pool.shutdown(wait=False)
        if self._delivery is None:
            return
        self._delivery.cancel()
        if self._undelivered and self._log_writer is not None:
            try:
                await asyncio.wait_for(self._log_writer.record_model_changes.remote(self._undelivered), 5)
            except Exception as exc:
                logger.error("%s: %d model-change entries lost at shutdown (%s)", self._name, len(self._undelivered),
                             type(exc).__name__)

    def _describe(self) -> str:
        active = self._active
        return "no model" if active is None else f"{active.version} threshold {active.threshold:.6f}"

    async def score(self, block: np.ndarray) -> Scored:
        """One caller's ``(n, 10)`` block: scored in one ONNX run with other callers' blocks, then the reasons of
        its denied rows computed on their own, outside the micro-batch, so the next ONNX run never waits for
        TreeSHAP and the reasons of several callers are computed at once (on ``REASON_THREADS`` threads)."""
        scored, active = await self._score_batch(block)
        reasons = await self._denial_reasons(active, block, scored.probabilities)
        return scored if reasons is None else replace(scored, reasons=reasons)

    @serve.batch  # sizes come from ScorerConfig through reconfigure
    async def _score_batch(self, blocks: list[np.ndarray]) -> list[tuple[Scored, LoadedModel]]:
        """Score each caller's block in one ONNX run; same order back, each with the model that scored it."""
        active = self._ensure_loaded()
        sizes = [len(b) for b in blocks]
        self.metrics.run(sum(sizes), len(blocks))
        rows = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        parts = np.split(active.classifier.predict_proba(rows), np.cumsum(sizes)[:-1])
        return [(Scored(p, active.version, active.threshold), active) for p in parts]

    async def _denial_reasons(self, active: LoadedModel, rows: np.ndarray,
                              probabilities: np.ndarray) -> pa.StringArray | None:
        """TreeSHAP over the denied rows only, by the model that scored them (in a thread: the replica keeps
        scoring), None for approved ones."""
        config = self._config
        if active.reasons is None or config is None or not config.reasons_for_denials or (
                isinstance(config, ChallengerConfig) and config.mode == "shadow"):   # shadow scores are never notices
            return None
        if not is_denied(probabilities, active.threshold).any():
            return None
        return await asyncio.get_running_loop().run_in_executor(self._reasons_pool, denial_reasons, active.reasons,
                                                                rows, probabilities, active.threshold)

    async def score_explained(self, block: np.ndarray) -> tuple[Scored, list[dict[str, Any]]]:
        """Score and explain one block with the same model; only for ``explain=true`` requests.

        Kept off the batched ``score`` path; the TreeSHAP work runs in a thread so the
        replica's event loop keeps serving ``score`` calls.
        """
        active = self._ensure_loaded()
        if active.reasons is None:
            raise LookupError(f"model {active.version} has no LightGBM file for explanations")
        probabilities = active.classifier.predict_proba(block)
        explanations = await asyncio.to_thread(active.reasons.explain_dicts, block)
        return Scored(probabilities, active.version, active.threshold), explanations

    def model_card(self) -> dict[str, Any]:
        """The active model card, with the threshold in force."""
        active = self._ensure_loaded()
        return active.card | {"threshold_in_force": active.threshold, "change_refused": self.refused}
