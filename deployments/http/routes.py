"""The HTTP routes: validate the body, score through the backend, apply the rule, answer, record.

Routes are plain functions on the module's FastAPI object; the serving side binds itself as the
``Backend`` (the Ray ingress in production, an in-process one in the fast tests), so the same code
answers in both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Header, HTTPException, Query, Request, Response

from core.api_keys import Scope
from core.features import EXAMPLE_APPLICANT
from core.settings import get_settings
from deployments.decisions import decide
from deployments.http.api import create_api
from deployments.http.backend import Backend, Unavailable
from deployments.http.rows import batch_rows, single_row, validate
from deployments.http.schemas import (
    APPLICANT_ADAPTER,
    APPLICANTS_ADAPTER,
    MAX_BATCH_ROWS,
    OUTCOMES_ADAPTER,
    BatchDecisions,
    Decision,
    Health,
    OutcomeReceipt,
    request_body_doc,
)
from deployments.performance import PerformanceQuery, Window
from deployments.scored import Scored
from prediction_log.outcomes import MAX_OUTCOMES, Outcomes
from prediction_log.query import LogQuery, cursor_of

api = create_api()
logger = logging.getLogger("ray.serve")
RETRY_AFTER = {"Retry-After": "1"}
_backend: Backend | None = None


def bind(backend: Backend) -> None:
    """Serve requests with ``backend`` (one per process: each Serve replica is its own process)."""
    global _backend
    _backend = backend


def backend() -> Backend:
    """The bound backend (called at the top of each route: cheaper than a FastAPI dependency, which a
    plain function would make run in a thread pool per request)."""
    if _backend is None:
        raise HTTPException(503, "starting up", headers=RETRY_AFTER)
    return _backend


ExplainQuery = Annotated[bool, Query(description="Add reason codes: TreeSHAP contributions and the features "
                                                 "that raise the risk")]

ApplicantKey = Annotated[str | None, Header(max_length=256, description=(
    "Optional stable key of the applicant (or portfolio): with a canary challenger, the same key is always "
    "answered by the same model; without it the applicant's data decides, so a resubmitted application is too"))]


ScoringKey = Annotated[str | None, Header(description="A key with scope 'score', when the server sets "
                                                        "SCORING_REQUIRES_KEY (off by default)")]


def unavailable(what: str, cause: BaseException | None = None) -> HTTPException:
    """The one 503 of this API: what is unavailable, and when to retry (the cause goes to the replica's log)."""
    if cause is not None:
        logger.warning("%s unavailable: %s: %s", what, type(cause).__name__, cause)
    return HTTPException(503, f"{what} unavailable, retry later", headers=RETRY_AFTER)


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


async def _json_body(request: Request) -> bytes:
    """The raw body; 415 for anything but JSON, so a cross-site form post (text/plain) cannot write decisions."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "Content-Type must be application/json")
    return await request.body()


async def _decide(b: Backend, rows: np.ndarray, started: float, endpoint: str, explain: bool,
                  key: str | None = None) -> list[dict[str, Any]]:
    """Score a request's block, apply the rule, queue the records, return the response items (in row order)."""
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
    assert isinstance(scored, Scored)
    return decide(rows, scored, (time.perf_counter() - started) * 1000, endpoint, b.record, explanations)


@api.post("/predict", response_model=Decision, summary="Credit decision for one applicant",
          openapi_extra=request_body_doc(APPLICANT_ADAPTER, EXAMPLE_APPLICANT))
async def predict(request: Request, explain: ExplainQuery = False, x_applicant_key: ApplicantKey = None,
                  x_api_key: ScoringKey = None) -> Response:
    b, started = backend(), time.perf_counter()
    if b.scoring_requires_key:
        _require(b, x_api_key, "score")
    with _admitted(b, request):   # before the body is read: parsing is work, and memory, to shed
        row = single_row(await _json_body(request))
        if explain:
            return _json((await _decide(b, row, started, "predict", explain=True))[0])
        try:
            return _json(await b.decide_single(row, started, x_applicant_key))
        except Exception as exc:
            raise unavailable(f"scorer ({type(exc).__name__})") from exc


@api.post("/predict/batch", response_model=BatchDecisions,
          summary=f"Credit decisions for up to {MAX_BATCH_ROWS:,} applicants, in order; one bad row rejects all",
          openapi_extra=request_body_doc(APPLICANTS_ADAPTER, [EXAMPLE_APPLICANT, EXAMPLE_APPLICANT]))
async def predict_batch(request: Request, explain: ExplainQuery = False,
                        x_applicant_key: ApplicantKey = None, x_api_key: ScoringKey = None) -> Response:
    b, started = backend(), time.perf_counter()
    if b.scoring_requires_key:
        _require(b, x_api_key, "score")
    with _admitted(b, request):
        rows = batch_rows(await _json_body(request))
        results = await _decide(b, rows, started, "batch", explain, x_applicant_key)
    return _json({"count": len(results), "results": results})


def _declared_bytes(request: Request) -> int:
    """The body's declared length (the body-size limit enforces it while reading); the limit when undeclared."""
    limit = get_settings().max_body_bytes
    try:
        return min(int(request.headers.get("content-length", limit)), limit)
    except ValueError:
        return limit


class _admitted:
    """The backend's admission as a context manager that answers 503 when it refuses."""

    def __init__(self, b: Backend, request: Request) -> None:
        self._context = b.admitted(_declared_bytes(request))

    def __enter__(self) -> None:
        try:
            self._context.__enter__()
        except Unavailable as exc:
            raise HTTPException(503, exc.what, headers=RETRY_AFTER) from exc

    def __exit__(self, *exc_info: Any) -> None:
        self._context.__exit__(*exc_info)


@api.get("/health", response_model=Health, summary="Model loaded, version and threshold, log state; 503 until ready")
async def health() -> Health:
    b = backend()
    try:
        card = await b.model_card()
    except Exception as exc:
        raise unavailable("scorer") from exc
    log = b.log_state()
    return Health(status="ok" if log == "ok" else "degraded", model_loaded=True, model_version=card["version"],
                  threshold=card["threshold_in_force"], log=log,  # type: ignore[arg-type]
                  change_refused=card.get("change_refused"))


@api.get("/model", summary="The active model card (public: no personal data)")
async def model() -> dict[str, Any]:
    b = backend()
    try:
        return await b.model_card()
    except Exception as exc:
        raise unavailable("scorer") from exc


def _require(b: Backend, x_api_key: str | None, scope: Scope) -> None:
    """401 without a valid key, 403 for a valid key without ``scope``."""
    if b.keys.allows(x_api_key, scope):
        return
    if b.keys.knows(x_api_key):
        raise HTTPException(403, f"this X-API-Key lacks the scope {scope!r}")
    raise HTTPException(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})


async def _read_log(x_api_key: str | None, read: Callable[[Backend], Awaitable[Any]]) -> Any:
    """A keyed read of the log (or what is computed from it): 401 without a key, 403 without the scope
    ``read``, 503 when the read fails."""
    b = backend()
    _require(b, x_api_key, "read")
    try:
        return await read(b)
    except Exception as exc:
        raise unavailable("prediction log", exc) from exc


@api.get("/predictions", summary="Prediction log, newest first (X-API-Key with scope read)")
async def predictions(query: Annotated[LogQuery, Query()],
                      x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    items = await _read_log(x_api_key, lambda b: b.query_log(query))
    more = len(items) == query.limit
    return {"limit": query.limit, "offset": query.offset, "count": len(items), "items": items,
            "next_cursor": cursor_of(items[-1]) if more else None}


@api.get("/predictions/stats", summary="Log writer counters and store size (X-API-Key with scope read)")
async def prediction_stats(x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return await _read_log(x_api_key, lambda b: b.log_stats())


@api.post("/outcomes", response_model=OutcomeReceipt,
          summary=f"Record what happened to up to {MAX_OUTCOMES:,} decided loans (X-API-Key with scope outcomes); "
                  "idempotent, a different outcome for a decided loan is a 409",
          openapi_extra=request_body_doc(OUTCOMES_ADAPTER, [{"request_id": "…", "defaulted": 0}]))
async def outcomes(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Response:
    b = backend()
    _require(b, x_api_key, "outcomes")
    items = validate(OUTCOMES_ADAPTER, await _json_body(request))
    now = datetime.now(timezone.utc)
    post = Outcomes([o.request_id for o in items], [o.defaulted for o in items],
                    [o.observed_at or now for o in items])
    try:
        receipt = await b.record_outcomes(post)
    except Exception as exc:
        raise unavailable("outcome store", exc) from exc
    if receipt.conflicting_request_ids:
        raise HTTPException(409, {"message": "a different outcome is already recorded for these decisions; "
                                             "nothing of this post was stored",
                                  "conflicting_request_ids": receipt.conflicting_request_ids})
    return _json({"accepted": receipt.accepted, "unknown_request_ids": receipt.unknown_request_ids,
                  "duplicates": receipt.duplicates})


@api.get("/performance", summary="Realized performance of decisions with outcomes, per period and model version, "
                                 "against the model card (X-API-Key with scope read)")
async def realized_performance(query: Annotated[PerformanceQuery, Query()],
                               x_api_key: Annotated[str | None, Header()] = None) -> Response:
    report = await _read_log(x_api_key, lambda b: b.performance(query))
    return _json({"since": query.since, "until": query.until, "model_version": query.model_version, **report})


@api.get("/challenger", summary="The shadow challenger against the champion on the same decisions: agreement, "
                                "approval rates, confusion, scatter, realized AUC and cost (X-API-Key with scope read)")
async def challenger_comparison(window: Annotated[Window, Query()],
                                x_api_key: Annotated[str | None, Header()] = None) -> Response:
    report = await _read_log(x_api_key, lambda b: b.challenger_comparison(window))
    return _json({"since": window.since, "until": window.until, **report})
