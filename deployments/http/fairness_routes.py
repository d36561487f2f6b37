"""Fair-lending monitoring (X-API-Key with scope ``fairness``): group membership posted beside the log (never seen
by the scorer) and the figures per group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from deployments.fairness import FairnessQuery
from deployments.http.answers import Fairness
from deployments.http.deps import FairnessReader, call_log, json_body, json_response, unavailable
from deployments.http.rows import validate
from deployments.http.schemas import GROUPS_ADAPTER, GroupsReceipt, request_body_doc
from deployments.log_service import PredictionLog
from prediction_log.groups import MAX_GROUPS, GroupPost

router = APIRouter(tags=["fair lending"])


@router.post("/groups", response_model=GroupsReceipt,
             summary=f"Group membership of up to {MAX_GROUPS:,} decided applicants, for disparate-impact monitoring "
                     "(X-API-Key with scope fairness); never seen by the scorer",
             openapi_extra=request_body_doc(GROUPS_ADAPTER,
                                            [{"request_id": "…", "attribute": "sex", "group": "female"}]))
async def groups(b: FairnessReader, request: Request) -> Response:
    items = validate(GROUPS_ADAPTER, await json_body(request, None, b.body_timeout_s))
    post = GroupPost([i.request_id for i in items], [i.attribute for i in items], [i.group for i in items])
    try:
        receipt = await b.call_log(PredictionLog.record_groups, post)
    except Exception as exc:
        raise unavailable("group store", exc) from exc
    return json_response({"accepted": receipt.accepted, "unknown_request_ids": receipt.unknown_request_ids,
                          "duplicates": receipt.duplicates})


@router.get("/fairness", response_model=Fairness,
            summary="Approval rates, adverse-impact ratios (four-fifths rule), error rates, AUC and calibration per "
                    "group: age bands and posted attributes (X-API-Key with scope fairness)")
async def fairness_report(b: FairnessReader, query: Annotated[FairnessQuery, Query()]) -> Response:
    report = await call_log(b, PredictionLog.fairness, query)
    return json_response({"since": query.since, "until": query.until, **report})
