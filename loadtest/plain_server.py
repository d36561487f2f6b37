"""The yardstick: plain FastAPI + ONNX Runtime in one uvicorn process, same validation and rule, **no logging**.

    uv run uvicorn loadtest.plain_server:app --host 127.0.0.1 --port 8100

``bench_throughput`` starts it itself, so our server is reported as a fraction of what one process
without Ray and without a prediction log answers on the same machine in the same run.
"""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

from core.decision import decision_label, is_denied
from deployments.http.rows import batch_rows, single_row
from models.loader import load_model

_model = load_model(None)
_card, _classifier, _threshold = _model.card, _model.classifier, _model.threshold
app = FastAPI(title="plain ONNX Runtime scorer (benchmark yardstick, no log)")


def _items(probabilities: np.ndarray) -> list[dict]:
    return [{"prediction": int(d), "probability_default": p, "credit_decision": decision_label(d),
             "model_version": _card["version"], "threshold": _threshold}
            for p, d in zip(np.round(probabilities, 6).tolist(), is_denied(probabilities, _threshold).tolist())]


@app.post("/predict")
async def predict(request: Request) -> Response:
    return Response(orjson.dumps(_items(_classifier.predict_proba(single_row(await request.body())))[0]),
                    media_type="application/json")


@app.post("/predict/batch")
async def predict_batch(request: Request) -> Response:
    items = _items(_classifier.predict_proba(batch_rows(await request.body())))
    return Response(orjson.dumps({"count": len(items), "results": items}), media_type="application/json")


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
