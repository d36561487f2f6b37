"""What happened to decided loans (X-API-Key with scope ``outcomes``): the input of realized performance."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response

from deployments.http.deps import OutcomeWriter, json_body, json_response, unavailable
from deployments.http.rows import validate
from deployments.http.schemas import OUTCOMES_ADAPTER, OutcomeReceipt, request_body_doc
from deployments.log_service import PredictionLog
from prediction_log.outcomes import MAX_OUTCOMES, Outcomes

router = APIRouter(tags=["outcomes"])


@router.post("/outcomes", response_model=OutcomeReceipt,
             summary=f"Record what happened to up to {MAX_OUTCOMES:,} decided loans (X-API-Key with scope outcomes); "
                     "idempotent, a different outcome for a decided loan is a 409",
             openapi_extra=request_body_doc(OUTCOMES_ADAPTER, [{"request_id": "…", "defaulted": 0}]))
async def outcomes(b: OutcomeWriter, request: Request) -> Response:
    items = validate(OUTCOMES_ADAPTER, await json_body(request, None, b.body_timeout_s))
    now = datetime.now(UTC)
    post = Outcomes([o.request_id for o in items], [o.defaulted for o in items],
                    [o.observed_at or now for o in items])
    try:
        receipt = await b.call_log(PredictionLog.record_outcomes, post)
    except Exception as exc:
        raise unavailable("outcome store", exc) from exc
    if receipt.conflicting_request_ids:
        raise HTTPException(409, {"message": "a different outcome is already recorded for these decisions; "
                                             "nothing of this post was stored",
                                  "conflicting_request_ids": receipt.conflicting_request_ids})
    return json_response({"accepted": receipt.accepted, "unknown_request_ids": receipt.unknown_request_ids,
                          "duplicates": receipt.duplicates})
