"""The yardstick on our own framework: the simplest Ray Serve app a user would write for this job.

One FastAPI ingress deployment (2 replicas, the same serve.env as ours) holding ONNX Runtime in-process,
the same pydantic validation and decision rule, ``async`` routes, **no micro-batching, no second
deployment, no log**. ``loadtest.bench_throughput`` runs it with the README's launcher beside ours, so our
server's throughput is reported as a ratio to what Ray Serve itself allows on this machine.

No ``from __future__ import annotations`` here: with string annotations FastAPI cannot resolve ``Request`` on
the methods of a Serve ingress class, and takes it for a required query parameter (every answer a 422).
"""

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from ray import serve

from core.decision import decision_label, is_denied
from deployments.http.rows import batch_rows, single_row
from models.loader import load_model

api = FastAPI(title="minimal Ray Serve scorer (benchmark yardstick, no log)")


@serve.deployment(num_replicas=2, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class MinimalScorer:
    def __init__(self) -> None:
        model = load_model(None)
        self.classifier, self.version, self.threshold = model.classifier, model.version, model.threshold

    def _items(self, probabilities: np.ndarray) -> list[dict]:
        return [{"prediction": int(d), "probability_default": p, "credit_decision": decision_label(d),
                 "model_version": self.version, "threshold": self.threshold}
                for p, d in zip(np.round(probabilities, 6).tolist(), is_denied(probabilities, self.threshold).tolist())]

    @api.post("/predict")
    async def predict(self, request: Request) -> Response:
        items = self._items(self.classifier.predict_proba(single_row(await request.body())))
        return Response(orjson.dumps(items[0]), media_type="application/json")

    @api.post("/predict/batch")
    async def predict_batch(self, request: Request) -> Response:
        items = self._items(self.classifier.predict_proba(batch_rows(await request.body())))
        return Response(orjson.dumps({"count": len(items), "results": items}), media_type="application/json")

    @api.get("/health")
    async def health(self) -> dict[str, str]:
        return {"status": "ok", "model_version": self.version}


app = MinimalScorer.bind()  # type: ignore[attr-defined]  # @serve.deployment: a Deployment
