"""Keyed reads of the prediction log (X-API-Key with scope ``read``): the log itself, one decision's notice, the
writer's counters, the window's counts, the audit record of model changes, the monitoring runs, realized
performance and the challenger comparison. Each is a ``@api_call`` of ``PredictionLog``, forwarded by the backend."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from deployments.http.answers import (
    ChallengerComparison,
    LogPage,
    LogStats,
    ModelChanges,
    MonitoringRuns,
    Performance,
    Summary,
)
from deployments.http.deps import Reader, call_log, json_response
from deployments.http.schemas import DecisionNotice
from deployments.log_service import PredictionLog
from deployments.performance import PerformanceQuery, SummaryQuery, Window
from prediction_log.model_changes import MAX_LISTED
from prediction_log.query import LogQuery, cursor_of

router = APIRouter(tags=["prediction log"])
RequestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


@router.get("/predictions", response_model=LogPage, summary="Prediction log, newest first (X-API-Key with scope read)")
async def predictions(b: Reader, query: Annotated[LogQuery, Query()]) -> dict[str, Any]:
    items = await call_log(b, PredictionLog.query, query)
    more = len(items) == query.limit
    return {"limit": query.limit, "offset": query.offset, "count": len(items), "items": items,
            "next_cursor": cursor_of(items[-1]) if more else None}


@router.get("/decisions/{request_id}", response_model=DecisionNotice,
            summary="One decision with its principal reasons, for an adverse-action notice (X-API-Key with scope read)")
async def decision_notice(b: Reader, request_id: RequestId) -> DecisionNotice:
    record = await call_log(b, PredictionLog.find, request_id)
    if record is None:
        raise HTTPException(404, f"no decision {request_id!r} in the prediction log")
    explanation = record.get("explanation") or {}
    reasons = [r["text"] for r in explanation.get("reasons", [])] if record["credit_decision"] == "denied" else []
    return DecisionNotice(request_id=record["request_id"], decided_at=str(record["ts"]),
                          credit_decision=record["credit_decision"], model_version=record["model_version"],
                          principal_reasons=reasons,
                          reasons_on_record=record["credit_decision"] == "approved" or bool(explanation))


@router.get("/predictions/stats", response_model=LogStats,
            summary="Log writer counters and store size (X-API-Key with scope read)")
async def prediction_stats(b: Reader) -> dict[str, Any]:
    return await call_log(b, PredictionLog.stats) | b.log_shipping()


@router.get("/predictions/summary", response_model=Summary,
            summary="The window's decisions counted, without reading them: totals and approval rate per endpoint and "
                    "model version, score histogram, latency, a per-minute or per-hour series (X-API-Key with scope "
                    "read)")
async def prediction_summary(b: Reader, query: Annotated[SummaryQuery, Query()]) -> Response:
    report = await call_log(b, PredictionLog.summary, query)
    return json_response({"since": query.since, "until": query.until, **report})


@router.get("/model/changes", response_model=ModelChanges,
            summary="Audit record of model changes, newest first: every model a scorer replica started with, switched "
                    "to or refused, from which version and threshold to which, when, on which host, as which OS user, "
                    "with the change_note (X-API-Key with scope read)")
async def model_changes(b: Reader, limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100) -> Response:
    return json_response({"items": await call_log(b, PredictionLog.model_changes, limit)})


@router.get("/monitoring/runs", response_model=MonitoringRuns,
            summary="The server's own monitoring runs, newest first: PSI of each feature over the last day's decisions "
                    "and the realized AUC of labelled ones beside the model card's (X-API-Key with scope read)")
async def monitoring_runs(b: Reader, limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 24) -> Response:
    return json_response({"items": await call_log(b, PredictionLog.monitoring_runs, limit)})


@router.get("/performance", response_model=Performance,
            summary="Realized performance of decisions with outcomes, per period and model version, against the model "
                    "card (X-API-Key with scope read)")
async def realized_performance(b: Reader, query: Annotated[PerformanceQuery, Query()]) -> Response:
    report = await call_log(b, PredictionLog.performance, query)
    return json_response({"since": query.since, "until": query.until, "model_version": query.model_version, **report})


@router.get("/challenger", response_model=ChallengerComparison,
            summary="The shadow challenger against the champion on the same decisions: agreement, approval rates, "
                    "confusion, scatter, realized AUC and cost (X-API-Key with scope read)")
async def challenger_comparison(b: Reader, window: Annotated[Window, Query()]) -> Response:
    report = await call_log(b, PredictionLog.challenger_comparison, window)
    return json_response({"since": window.since, "until": window.until, **report})
