"""The routes that serve personal data or take it in, each behind an X-API-Key with the right scope: the log,
one decision's notice, outcomes, realized performance, the challenger comparison, group membership and fairness,
and the audit record of model changes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Header, HTTPException, Path, Query, Request, Response

from deployments.fairness import FairnessQuery
from deployments.http.binding import _json, _json_body, _read_log, _require, api, backend, unavailable
from deployments.http.rows import validate
from deployments.http.schemas import (
    GROUPS_ADAPTER,
    OUTCOMES_ADAPTER,
    DecisionNotice,
    GroupsReceipt,
    OutcomeReceipt,
    request_body_doc,
)
from deployments.performance import PerformanceQuery, SummaryQuery, Window
from prediction_log.groups import MAX_GROUPS, GroupPost
from prediction_log.model_changes import MAX_LISTED
from prediction_log.outcomes import MAX_OUTCOMES, Outcomes
from prediction_log.query import LogQuery, cursor_of


@api.get("/predictions", summary="Prediction log, newest first (X-API-Key with scope read)")
async def predictions(query: Annotated[LogQuery, Query()],
                      x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    items = await _read_log(x_api_key, lambda b: b.query_log(query))
    more = len(items) == query.limit
    return {"limit": query.limit, "offset": query.offset, "count": len(items), "items": items,
            "next_cursor": cursor_of(items[-1]) if more else None}


RequestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


@api.get("/decisions/{request_id}", response_model=DecisionNotice,
         summary="One decision with its principal reasons, for an adverse-action notice (X-API-Key with scope read)")
async def decision_notice(request_id: RequestId, x_api_key: Annotated[str | None, Header()] = None) -> DecisionNotice:
    record = await _read_log(x_api_key, lambda b: b.find_decision(request_id))
    if record is None:
        raise HTTPException(404, f"no decision {request_id!r} in the prediction log")
    explanation = record.get("explanation") or {}
    reasons = [r["text"] for r in explanation.get("reasons", [])] if record["credit_decision"] == "denied" else []
    return DecisionNotice(request_id=record["request_id"], decided_at=str(record["ts"]),
                          credit_decision=record["credit_decision"], model_version=record["model_version"],
                          principal_reasons=reasons,
                          reasons_on_record=record["credit_decision"] == "approved" or bool(explanation))


@api.get("/predictions/stats", summary="Log writer counters and store size (X-API-Key with scope read)")
async def prediction_stats(x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    return await _read_log(x_api_key, lambda b: b.log_stats())


@api.get("/predictions/summary",
         summary="The window's decisions counted, without reading them: totals and approval rate per endpoint and "
                 "model version, score histogram, latency, a per-minute or per-hour series (X-API-Key with scope read)")
async def prediction_summary(query: Annotated[SummaryQuery, Query()],
                             x_api_key: Annotated[str | None, Header()] = None) -> Response:
    report = await _read_log(x_api_key, lambda b: b.log_summary(query))
    return _json({"since": query.since, "until": query.until, **report})


@api.get("/model/changes", summary="Audit record of model changes, newest first: every model a scorer replica started "
                                   "with, switched to or refused, from which version and threshold to which, when, "
                                   "on which host, as which OS user, with the change_note (X-API-Key with scope read)")
async def model_changes(limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
                        x_api_key: Annotated[str | None, Header()] = None) -> Response:
    return _json({"items": await _read_log(x_api_key, lambda b: b.model_changes(limit))})


@api.get("/monitoring/runs", summary="The server's own monitoring runs, newest first: PSI of each feature over the last "
                                    "day's decisions and the realized AUC of labelled ones beside the model card's "
                                    "(X-API-Key with scope read)")
async def monitoring_runs(limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 24,
                          x_api_key: Annotated[str | None, Header()] = None) -> Response:
    return _json({"items": await _read_log(x_api_key, lambda b: b.monitoring_runs(limit))})


@api.post("/outcomes", response_model=OutcomeReceipt,
          summary=f"Record what happened to up to {MAX_OUTCOMES:,} decided loans (X-API-Key with scope outcomes); "
                  "idempotent, a different outcome for a decided loan is a 409",
          openapi_extra=request_body_doc(OUTCOMES_ADAPTER, [{"request_id": "…", "defaulted": 0}]))
async def outcomes(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Response:
    b = backend()
    _require(b, x_api_key, "outcomes")
    items = validate(OUTCOMES_ADAPTER, await _json_body(request, None, b.body_timeout_s))
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


@api.post("/groups", response_model=GroupsReceipt,
          summary=f"Group membership of up to {MAX_GROUPS:,} decided applicants, for disparate-impact monitoring "
                  "(X-API-Key with scope fairness); never seen by the scorer",
          openapi_extra=request_body_doc(GROUPS_ADAPTER, [{"request_id": "…", "attribute": "sex", "group": "female"}]))
async def groups(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Response:
    b = backend()
    _require(b, x_api_key, "fairness")
    items = validate(GROUPS_ADAPTER, await _json_body(request, None, b.body_timeout_s))
    post = GroupPost([i.request_id for i in items], [i.attribute for i in items], [i.group for i in items])
    try:
        receipt = await b.record_groups(post)
    except Exception as exc:
        raise unavailable("group store", exc) from exc
    return _json({"accepted": receipt.accepted, "unknown_request_ids": receipt.unknown_request_ids,
                  "duplicates": receipt.duplicates})


@api.get("/fairness", summary="Approval rates, adverse-impact ratios (four-fifths rule), error rates, AUC and "
                              "calibration per group: age bands and posted attributes (X-API-Key with scope fairness)")
async def fairness_report(query: Annotated[FairnessQuery, Query()],
                          x_api_key: Annotated[str | None, Header()] = None) -> Response:
    b = backend()
    _require(b, x_api_key, "fairness")
    try:
        report = await b.fairness(query)
    except Exception as exc:
        raise unavailable("prediction log", exc) from exc
    return _json({"since": query.since, "until": query.until, **report})
