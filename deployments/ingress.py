"""Ingress deployment: the HTTP routes' backend on Ray Serve — micro-batched scoring, load shedding, log shipping.

A single-row ``/predict`` joins an ingress-side micro-batch, so one handle call to the scorer
carries many rows; ``/predict/batch`` sends its block in one call. Decision blocks are handed to
the log shipper (never awaited by the response).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

import numpy as np
import ray
from fastapi import FastAPI
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from core.api_keys import key_ring
from core.settings import CHALLENGER_POLL_S, KEY_RELOAD_S, NODE_SPOOL_REPLAY_S, IngressConfig, Settings, get_settings
from deployments.challenger import Routing, ShadowCalls
from deployments.decisions import decide, denied_count, with_challenger
from deployments.http.admission import Admission, Slot
from deployments.http.app import create_app
from deployments.http.backend import Overloaded, Unavailable
from deployments.http.pacing import RejectionPacer
from deployments.log_service import LogCall
from deployments.log_shipper import LogShipper
from deployments.loopback import bind_replica_servers_to_loopback
from deployments.metrics import IngressMetrics
from deployments.node_spool import NodeSpoolReplay
from deployments.reconfigure import validated_or_kept
from deployments.scored import Scored
from prediction_log.records import Block
from prediction_log.spool import Spool

logger = logging.getLogger("ray.serve")
P = ParamSpec("P")
T = TypeVar("T")
REPLICA_LOST = (RayActorError, ActorUnavailableError, ReplicaUnavailableError)
"""A scorer replica died or became unreachable while holding the call."""


@serve.deployment
@serve.ingress()
class Ingress:
    def __init__(self, scorer: DeploymentHandle, log_writer: DeploymentHandle,
                 challenger: DeploymentHandle | None = None) -> None:
        bind_replica_servers_to_loopback()
        settings = get_settings()
        self.scorer = scorer
        self.log_writer = log_writer
        self.challenger = challenger
        self.routing = Routing()
        self.shadows = ShadowCalls(self._call_challenger, self._count_challenger)
        self._shipping: set[asyncio.Task[None]] = set()
        """Records waiting for their shadow score (at most ``timeout_s``) before they go to the shipper."""
        self.config = IngressConfig()
        self._configured = False
        self.keys = key_ring(settings)
        self.scoring_requires_key = settings.scoring_requires_key
        self.metrics = IngressMetrics()
        self.admission = Admission(self.config.max_in_flight_requests, self.config.max_in_flight_body_bytes)
        self.rejections = RejectionPacer(self.config.rejections_per_s, self.config.rejection_delay_s,
                                         self.config.max_delayed_rejections,
                                         lambda pace: self.metrics.rejections.inc(tags={"pace": pace}))
        replica = serve.get_replica_context().replica_id.unique_id
        spool = Spool(settings.data_dir / "spool", f"ingress-{replica}")
        self.shipper = LogShipper(log_writer, spool, self.config, buffer_gauge=self.metrics.log_buffer)
        self.node_spool = NodeSpoolReplay(log_writer, spool, lambda: ray.get_runtime_context().get_node_id())
        if settings.api_key is None:
            logger.warning("API_KEY unset: /predictions requires the generated key in %s",
                           settings.data_dir / "api_key")
        self._follow = (asyncio.get_event_loop().create_task(self._follow_challenger())
                        if challenger is not None else None)
        self._follow_keys = asyncio.get_event_loop().create_task(self._reload_keys())
        self._node_spool = asyncio.get_event_loop().create_task(self.node_spool.run(NODE_SPOOL_REPLAY_S))

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply an edited user_config; an invalid one is refused (logged) and the one in force stays."""
        config = validated_or_kept(IngressConfig, user_config, self.config if self._configured else None, "ingress")
        if config is None:
            return
        self._configured = True
        self.config = config
        for batched in (self._decide_rows, self._decide_rows_canary):
            batched.set_max_batch_size(config.max_batch_size)
            batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.shipper.apply(config)
        self.admission.apply(config.max_in_flight_requests, config.max_in_flight_body_bytes)
        self.rejections.apply(config.rejections_per_s, config.rejection_delay_s, config.max_delayed_rejections)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """This replica's HTTP app, served by this replica (Serve calls it after ``__init__``); the Open Inference
        Protocol names the model after the Serve application."""
        return create_app(self, model_name=serve.get_replica_context().app_name)

    # ---- Backend for deployments.http ----

    @contextmanager
    def admitted(self) -> Iterator[Slot]:
        """Shed load past ``max_in_flight_requests``, and bodies past ``max_in_flight_body_bytes`` as they arrive
        (``Slot.reserve``); refuse while decisions cannot be recorded."""
        if not self.shipper.accepting:
            raise self._log_refusing()
        try:
            with self.admission.slot() as slot:
                yield slot
        except Overloaded:
            self.metrics.shed.inc(tags={"reason": "overload"})
            raise

    @property
    def body_timeout_s(self) -> float:
        return self.config.body_timeout_s

    def _log_refusing(self) -> Unavailable:
        """The 503 of a decision the log cannot record (counted as shed)."""
        self.metrics.shed.inc(tags={"reason": "log_refusing"})
        return Unavailable("prediction log unavailable (nowhere to record decisions), retry later")

    @serve.batch(max_concurrent_batches=4)  # batch size and wait come from IngressConfig (reconfigure)
    async def _decide_rows(self, rows: list[np.ndarray], started: list[float]) -> list[dict[str, Any]]:
        """Many single-row requests → one scorer call, one decision block, one record call."""
        return await self._decide_micro_batch(rows, started, canary=False)

    @serve.batch(max_concurrent_batches=4)
    async def _decide_rows_canary(self, rows: list[np.ndarray], started: list[float]) -> list[dict[str, Any]]:
        """The same for the requests a canary challenger answers."""
        return await self._decide_micro_batch(rows, started, canary=True)

    async def _decide_micro_batch(self, rows: list[np.ndarray], started: list[float],
                                  canary: bool) -> list[dict[str, Any]]:
        self.metrics.scorer_call(len(rows), "micro_batch")
        block = np.vstack(rows)
        scored = await (self._score_challenger(block) if canary else self._score_with_shadow(block))
        latency_ms = (time.perf_counter() - np.asarray(started)) * 1000
        return decide(block, scored, latency_ms, "predict", self.record)

    async def decide_single(self, row: np.ndarray, started: float, key: str | None = None) -> dict[str, Any]:
        if self.routing.answers(key, row):
            try:
                return await self._decide_rows_canary(row, started)
            except Exception:   # challenger down, slow or failing: the champion answers
                self._count_challenger("fallback", 1)
        return await self._decide_rows(row, started)

    async def score_block(self, rows: np.ndarray, key: str | None = None) -> Scored:
        self.metrics.scorer_call(len(rows), "request")
        if self.routing.answers(key, rows):
            try:
                return await self._score_challenger(rows)
            except Exception:
                self._count_challenger("fallback", len(rows))
        return await self._score_with_shadow(rows)

    async def _score_with_shadow(self, block: np.ndarray) -> Scored:
        """The champion's scores, with the shadow challenger's started beside them (never awaited here)."""
        shadow = self.shadows.start(block, self.routing)
        try:
            scored = await self._score_on_any_replica(block)
        except BaseException:
            if shadow is not None:
                shadow.cancel()
            raise
        return scored if shadow is None else replace(scored, shadow=shadow)

    async def _score_on_any_replica(self, block: np.ndarray) -> Scored:
        """Scoring is pure, so a block whose replica was lost is sent once more (to another replica)."""
        try:
            return await self.scorer.score.remote(block)
        except REPLICA_LOST as exc:
            logger.warning("ingress: scorer replica lost (%s); retrying %d rows", type(exc).__name__, len(block))
            return await self.scorer.score.remote(block)

    async def _call_challenger(self, block: np.ndarray) -> Scored:
        assert self.challenger is not None
        return await self.challenger.score.remote(block)

    async def _score_challenger(self, block: np.ndarray) -> Scored:
        scored = await asyncio.wait_for(self._call_challenger(block), self.routing.timeout_s)
        self._count_challenger("canary", len(block))
        return scored

    def _count_challenger(self, result: str, rows: int) -> None:
        self.metrics.challenger_rows.inc(rows, {"result": result})

    async def _follow_challenger(self) -> None:
        """Read the challenger's mode now and then (its user_config is edited by ``serve deploy``)."""
        assert self.challenger is not None
        while True:
            try:
                routing = Routing(**await asyncio.wait_for(self.challenger.routing.remote(), 5))
                if routing != self.routing:
                    logger.info("ingress: challenger %s (%s)", routing.mode, routing.version)
                self.routing = routing
            except Exception as exc:   # challenger restarting: keep the last routing (calls fall back)
                logger.debug("ingress: challenger routing unavailable (%s)", type(exc).__name__)
            await asyncio.sleep(CHALLENGER_POLL_S)

    async def _reload_keys(self) -> None:
        """Re-read the keys now and then: with ``API_KEYS`` in the secrets folder (``CREDIT_SECRETS_DIR``), an
        edit of that file rotates keys on the running server, no restart; a file that does not parse is
        refused (logged) and the keys in force stay."""
        while True:
            await asyncio.sleep(KEY_RELOAD_S)
            try:
                ring = key_ring(Settings())   # a few small files: no thread (none is left at shutdown)
            except Exception as exc:
                logger.error("ingress: API keys not reloaded, the keys in force stay: %s", exc)
                continue
            if ring != self.keys:
                logger.warning("ingress: API keys changed: %d keys in force", len(ring.keys))
                self.keys = ring

    async def score_explained(self, rows: np.ndarray) -> tuple[Scored, list[dict[str, Any]]]:
        return await self.scorer.score_explained.remote(rows)

    def record(self, block: Block, endpoint: str, shadow: Any = None) -> None:
        if not self.shipper.accepts(len(block)):   # the log cannot keep it durable: not answered, so not lost
            raise self._log_refusing()
        if shadow is None:
            self.shipper.add(block)
        else:
            task = asyncio.ensure_future(self._ship_with_shadow(block, shadow))
            self._shipping.add(task)
            task.add_done_callback(self._shipping.discard)
        self.metrics.decided(block.column("probability_default").to_numpy(), denied_count(block), endpoint,
                             block.column("model_version")[0].as_py())

    async def _ship_with_shadow(self, block: Block, shadow: asyncio.Task[Scored]) -> None:
        """Ship the records with the challenger's scores, or without them if it failed or timed out."""
        try:
            scored = await shadow
            block = with_challenger(block, scored.probabilities, scored.model_version, scored.threshold)
            self._count_challenger("shadow", len(block))
        except BaseException:   # timeout, error, cancellation at shutdown: the decision is logged regardless
            self._count_challenger("missing", len(block))
        self.shipper.add(block)

    async def model_card(self) -> dict[str, Any]:
        return await self.scorer.model_card.remote()

    async def call_log(self, method: LogCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.log_writer.call.remote(method.__name__, *args, **kwargs)

    def log_shipping(self) -> dict[str, Any]:
        return {"buffered_in_this_ingress": self.shipper.held, "log_state": self.shipper.state}

    def log_state(self) -> str:
        return self.shipper.state

    async def __del__(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
        self._node_spool.cancel()
        if self._shipping:   # each waits at most the challenger's timeout
            await asyncio.wait(set(self._shipping), timeout=self.routing.timeout_s + 1)
        await self.shipper.close()
