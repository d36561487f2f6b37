"""The scoring routes: admit, validate the body, score through the backend, decide, answer, record. Their request
bodies are the model's schema (``router(rows)``: validation and OpenAPI from one ``RowReader``)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response

from deployments.decisions import decided_block, response_items
from deployments.http.backend import Backend, Unavailable
from deployments.http.deps import json_body, json_response, require, unavailable
from deployments.http.rows import RowReader
from deployments.http.schemas import MAX_BATCH_ROWS, BatchDecisions, Decision, example_applicant, request_body_doc
from prediction_log.records import Block

ExplainQuery = Annotated[bool, Query(description="Add reason codes: TreeSHAP contributions and the features "
                                                 "that raise the risk")]

ApplicantKey = Annotated[str | None, Header(max_length=256, description=(
    "Optional stable key of the applicant (or portfolio): with a canary challenger, the same key is always "
    "answered by the same model; without it the applicant's data decides, so a resubmitted application is too"))]

ScoringKey = Annotated[str | None, Header(description="A key with scope 'score', when the server sets "
                                                        "SCORING_REQUIRES_KEY (off by default)")]


def _backend(request: Request) -> Backend:
    """The app's backend, read off the request (the hot path: a dependency would cost each request a resolution)."""
    b: Backend = request.app.state.backend
    return b


async def decided(b: Backend, rows: np.ndarray, started: float, endpoint: str, explain: bool,
                  key: str | None = None) -> tuple[Block, list[dict[str, Any]] | None]:
    """Score a request's block, apply the rule, queue the records; the decision block and, with ``explain``, every
    row's explanation (409 when the model cannot explain, 503 when the scorer cannot answer)."""
    explanations: list[dict[str, Any]] | None = None
    try:
        if explain:
            scored, explanations = await b.score_explained(rows)
        else:
            scored = await b.score_block(rows, key)
    except LookupError as exc:
        raise HTTPException(409, str(exc)) from exc
    except Exception as exc:
        raise unavailable(f"scorer ({type(exc).__name__})") from exc
    latency_ms = (time.perf_counter() - started) * 1000
    return decided_block(rows, scored, latency_ms, endpoint, b.record, explanations), explanations


async def _decide(b: Backend, rows: np.ndarray, started: float, endpoint: str, explain: bool,
                  key: str | None = None) -> list[dict[str, Any]]:
    """The response items of a request's block (in row order)."""
    return response_items(*await decided(b, rows, started, endpoint, explain, key))


def router(rows: RowReader) -> APIRouter:
    """``/predict`` and ``/predict/batch`` for applicants of ``rows.schema``."""
    routes = APIRouter(tags=["scoring"])
    example = example_applicant(rows.schema)

    @routes.post("/predict", response_model=Decision, summary="Credit decision for one applicant",
                 openapi_extra=request_body_doc(rows.one, example))
    async def predict(request: Request, explain: ExplainQuery = False, x_applicant_key: ApplicantKey = None,
                      x_api_key: ScoringKey = None) -> Response:
        b, started = _backend(request), time.perf_counter()
        if b.scoring_requires_key:
            require(b, x_api_key, "score")
        with b.admitted() as slot:   # before the body is read: parsing is work, and memory, to shed
            row = rows.single_row(await json_body(request, slot, b.body_timeout_s))
            if explain:
                return json_response((await _decide(b, row, started, "predict", explain=True))[0])
            try:
                return json_response(await b.decide_single(row, started, x_applicant_key))
            except Unavailable:   # the log turned away after admission: answered 503 by the app's handler
                raise
            except Exception as exc:
                raise unavailable(f"scorer ({type(exc).__name__})") from exc

    @routes.post("/predict/batch", response_model=BatchDecisions,
                 summary=f"Credit decisions for up to {MAX_BATCH_ROWS:,} applicants, in order; one bad row rejects "
                         "all",
                 openapi_extra=request_body_doc(rows.many, [example, example]))
    async def predict_batch(request: Request, explain: ExplainQuery = False,
                            x_applicant_key: ApplicantKey = None, x_api_key: ScoringKey = None) -> Response:
        b, started = _backend(request), time.perf_counter()
        if b.scoring_requires_key:
            require(b, x_api_key, "score")
        with b.admitted() as slot:
            block = rows.batch_rows(await json_body(request, slot, b.body_timeout_s))
            results = await _decide(b, block, started, "batch", explain, x_applicant_key)
        return json_response({"count": len(results), "results": results})

    return routes
