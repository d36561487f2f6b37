"""The yardstick of our shape on our framework: ingress → scorer deployment, written the way Ray's docs teach it.

A FastAPI ingress deployment (2 replicas) validates each request and makes one handle call per request to a
``Scorer`` deployment whose ``@serve.batch`` method scores the callers' rows in one ONNX run; the same
pydantic-free parsing and decision rule as ours, **no log**. ``loadtest.bench_throughput`` runs it with the
README's launcher beside ours and beside the single-deployment app (``loadtest/minimal_serve_app.py``).

No ``from __future__ import annotations`` (see ``minimal_serve_app``).
"""

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from core.decision import decision_label, is_denied
from deployments.http.rows import batch_rows, single_row
from models.loader import load_model

api = FastAPI(title="minimal split Ray Serve scorer (benchmark yardstick, no log)")


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
class BatchScorer:
    def __init__(self) -> None:
        model = load_model(None)
        self.classifier, self.version, self.threshold = model.classifier, model.version, model.threshold

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.002)
    async def score(self, blocks: list[np.ndarray]) -> list[tuple[np.ndarray, str, float]]:
        sizes = [len(b) for b in blocks]
        parts = np.split(self.classifier.predict_proba(np.concatenate(blocks)), np.cumsum(sizes)[:-1])
        return [(p, self.version, self.threshold) for p in parts]


@serve.deployment(num_replicas=2, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class SplitIngress:
    def __init__(self, scorer: DeploymentHandle) -> None:
        self.scorer = scorer

    async def _items(self, rows: np.ndarray) -> list[dict]:
        probabilities, version, threshold = await self.scorer.score.remote(rows)
        return [{"prediction": int(d), "probability_default": p, "credit_decision": decision_label(d),
                 "model_version": version, "threshold": threshold}
                for p, d in zip(np.round(probabilities, 6).tolist(), is_denied(probabilities, threshold).tolist())]

    @api.post("/predict")
    async def predict(self, request: Request) -> Response:
        items = await self._items(single_row(await request.body()))
        return Response(orjson.dumps(items[0]), media_type="application/json")

    @api.post("/predict/batch")
    async def predict_batch(self, request: Request) -> Response:
        items = await self._items(batch_rows(await request.body()))
        return Response(orjson.dumps({"count": len(items), "results": items}), media_type="application/json")

    @api.get("/health")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}


app = SplitIngress.bind(BatchScorer.bind())  # type: ignore[attr-defined]  # @serve.deployment: a Deployment
