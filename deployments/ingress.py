"""Ingress deployment: validated FastAPI routes, micro-batched scoring, decision policy.

A single-row ``/predict`` joins an ingress-side micro-batch, so one handle call to the
scorer carries many rows; ``/predict/batch`` sends its block in one call. Decisions are
handed to the log shipper (never awaited by the response).
"""


import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Header, HTTPException, Query, Request, Response
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from deployments.decisions import decide
from deployments.log_shipper import LogShipper
from deployments.metrics import IngressMetrics
from deployments.scorer import Scored
from prediction_log.query import LogQuery
from prediction_log.spool import Spool
from serve_app.api import create_api
from serve_app.api_key import resolve_api_key
from serve_app.features import EXAMPLE_APPLICANT
from serve_app.rows import batch_rows, single_row
from serve_app.schemas import APPLICANT_ADAPTER, APPLICANTS_ADAPTER, BatchDecisions, Decision, Health, request_body_doc
from serve_app.settings import IngressConfig, get_settings

logger = logging.getLogger("ray.serve")
api = create_api()
UNAVAILABLE = {"Retry-After": "1"}
REPLICA_LOST = (RayActorError, ActorUnavailableError, ReplicaUnavailableError)
"""A scorer replica died or became unreachable while holding the call."""


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@serve.deployment(max_ongoing_requests=1024, graceful_shutdown_timeout_s=20)
@serve.ingress(api)
class Ingress:
    def __init__(self, scorer: DeploymentHandle, log_writer: DeploymentHandle) -> None:
        settings = get_settings()
        self.scorer = scorer
        self.log_writer = log_writer
        self.config = IngressConfig()
        self.api_key = resolve_api_key(settings)
        self.metrics = IngressMetrics()
        self.in_flight = 0
        replica = serve.get_replica_context().replica_id.unique_id
        self.shipper = LogShipper(log_writer, Spool(settings.data_dir / "spool", f"ingress-{replica}"),
                                  self.config.log_flush_interval_s, self.config.log_flush_max_records,
                                  buffer_gauge=self.metrics.log_buffer)
        if settings.api_key is None:
            logger.warning("API_KEY unset: /predictions requires the generated key in %s",
                           settings.data_dir / "api_key")

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.config = IngressConfig.model_validate(user_config or {})
        self._score_single.set_max_batch_size(self.config.max_batch_size)
        self._score_single.set_batch_wait_timeout_s(self.config.batch_wait_timeout_s)
        self.shipper.interval_s = self.config.log_flush_interval_s
        self.shipper.max_records = self.config.log_flush_max_records

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.002, max_concurrent_batches=4)
    async def _score_single(self, rows: list[np.ndarray]) -> list[tuple[float, str, float]]:
        """Many single-row requests → one scorer call."""
        self.metrics.scorer_call(len(rows), "micro_batch")
        scored = await self._score_on_any_replica(np.vstack(rows))
        return [(float(p), scored.model_version, scored.threshold) for p in scored.probabilities]

    async def _score_block(self, block: np.ndarray) -> Scored:
        self.metrics.scorer_call(len(block), "request")
        return await self._score_on_any_replica(block)

    async def _score_on_any_replica(self, block: np.ndarray) -> Scored:
        """Scoring is pure, so a block whose replica was lost is sent once more (to another replica)."""
        try:
            return await self.scorer.score.remote(block)
        except REPLICA_LOST as exc:
            logger.warning("ingress: scorer replica lost (%s); retrying %d rows", type(exc).__name__, len(block))
            return await self.scorer.score.remote(block)

    async def _explained(self, rows: np.ndarray, started: float, endpoint: str) -> list[dict[str, Any]]:
        """Decisions with their explanations, scored and explained by the same model in one call."""
        try:
            scored, explanations = await self.scorer.score_explained.remote(rows)
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from exc
        except Exception as exc:
            raise HTTPException(503, f"scorer unavailable: {type(exc).__name__}", headers=UNAVAILABLE) from exc
        return self._decide(rows, scored.probabilities, scored.model_version, scored.threshold, started, endpoint,
                            explanations)

    def _decide(self, rows: np.ndarray, probabilities: np.ndarray, version: str, threshold: float,
                started: float, endpoint: str, explanations: list[dict[str, Any]] | None = None,
                ) -> list[dict[str, Any]]:
        """Apply the policy, queue the log records (with any explanations), return the response items."""
        decided = decide(rows, probabilities, version, threshold,
                         (time.perf_counter() - started) * 1000, endpoint, explanations)
        self.shipper.add(decided.records)
        self.metrics.decided(probabilities, decided.denied, endpoint, version)
        return decided.responses

    @api.post("/predict", response_model=Decision, summary="Credit decision for one applicant",
              openapi_extra=request_body_doc(APPLICANT_ADAPTER, EXAMPLE_APPLICANT))
    async def predict(self, request: Request, explain: Annotated[bool, Query(
            description="Add reason codes: TreeSHAP contributions and the features that raise the risk")] = False,
    ) -> Response:
        with self._admitted():
            return await self._predict(request, explain)

    @contextmanager
    def _admitted(self) -> Iterator[None]:
        """Shed load: 503 + Retry-After once ``max_in_flight_requests`` scoring requests are held."""
        if self.in_flight >= self.config.max_in_flight_requests:
            self.metrics.shed.inc()
            raise HTTPException(503, "server overloaded, retry later", headers=UNAVAILABLE)
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def _predict(self, request: Request, explain: bool) -> Response:
        started = time.perf_counter()
        row = single_row(await request.body())
        if explain:
            return _json((await self._explained(row, started, "predict"))[0])
        try:
            p, version, threshold = await self._score_single(row[0])
        except Exception as exc:
            raise HTTPException(503, f"scorer unavailable: {type(exc).__name__}", headers=UNAVAILABLE) from exc
        return _json(self._decide(row, np.array([p]), version, threshold, started, "predict")[0])

    @api.post("/predict/batch", response_model=BatchDecisions,
              summary="Credit decisions for up to 10,000 applicants, in order; one bad row rejects all",
              openapi_extra=request_body_doc(APPLICANTS_ADAPTER, [EXAMPLE_APPLICANT, EXAMPLE_APPLICANT]))
    async def predict_batch(self, request: Request, explain: Annotated[bool, Query(
            description="Add reason codes to every result")] = False) -> Response:
        with self._admitted():
            return await self._predict_batch(request, explain)

    async def _predict_batch(self, request: Request, explain: bool) -> Response:
        started = time.perf_counter()
        rows = batch_rows(await request.body())
        if len(rows) > self.config.max_batch_rows:
            raise HTTPException(413, f"at most {self.config.max_batch_rows} applicants per batch")
        if explain:
            results = await self._explained(rows, started, "batch")
            return _json({"count": len(results), "results": results})
        try:
            scored = await self._score_block(rows)
        except Exception as exc:
            raise HTTPException(503, f"scorer unavailable: {type(exc).__name__}", headers=UNAVAILABLE) from exc
        results = self._decide(rows, scored.probabilities, scored.model_version,
                               scored.threshold, started, "batch")
        return _json({"count": len(results), "results": results})

    @api.get("/health", response_model=Health, summary="Model loaded, version and threshold; 503 until ready")
    async def health(self) -> Health:
        try:
            card = await self.scorer.model_card.remote()
        except Exception as exc:
            raise HTTPException(503, "scorer not ready", headers=UNAVAILABLE) from exc
        return Health(status="ok", model_loaded=True, model_version=card["version"],
                      threshold=card["threshold_in_force"])

    @api.get("/model", summary="The active model card")
    async def model(self) -> dict[str, Any]:
        try:
            return await self.scorer.model_card.remote()
        except Exception as exc:
            raise HTTPException(503, "scorer not ready", headers=UNAVAILABLE) from exc

    def _require_key(self, x_api_key: str | None) -> None:
        if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), self.api_key.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})

    @api.get("/predictions", summary="Prediction log, newest first (requires X-API-Key)")
    async def predictions(
        self,
        query: Annotated[LogQuery, Query()],
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        self._require_key(x_api_key)
        try:
            items = await self.log_writer.query.remote(query)
        except Exception as exc:
            raise HTTPException(503, "prediction log unavailable", headers=UNAVAILABLE) from exc
        return {"limit": query.limit, "offset": query.offset, "count": len(items), "items": items}

    @api.get("/predictions/stats", summary="Log writer counters and store size (requires X-API-Key)")
    async def prediction_stats(self, x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        self._require_key(x_api_key)
        try:
            stats = await self.log_writer.stats.remote()
        except Exception as exc:
            raise HTTPException(503, "prediction log unavailable", headers=UNAVAILABLE) from exc
        return stats | {"buffered_in_this_ingress": len(self.shipper.buffer)}

    async def __del__(self) -> None:
        await self.shipper.close()
