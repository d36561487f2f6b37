"""The FastAPI application object: metadata, body-size limit (413), error format (422).

Routes live in ``deployments/http/routes.py``; the ingress deployment (``deployments/ingress.py``)
serves them through ``@serve.ingress``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from core.settings import get_settings

DESCRIPTION = """Credit-default scoring. `POST /predict` returns the default probability and the
credit decision (denied when the probability is at or above the model's business threshold).
Every decision answered 200 is written to the prediction log."""


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors as {field, row, msg, type}; the offending input is not echoed back."""
    errors = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            errors.append({"field": None, "loc": [], "msg": f"body is not valid JSON: {reason}".strip(": "),
                           "type": "json_invalid"})
            continue
        row = next((p for p in loc if isinstance(p, int)), None)
        field = next((p for p in reversed(loc) if isinstance(p, str)), None)
        item = {"field": field, "loc": loc, "msg": err.get("msg"), "type": err.get("type")}
        if row is not None:
            item["row"] = row
        errors.append(item)
    return errors


PACED_STATUSES = frozenset({401, 403, 415, 422})
"""Rejections a client looping on bad input or guessing keys gets: their answers are paced."""

BeforeRejection = Callable[[Request], Awaitable[None]]


def create_api(before_rejection: BeforeRejection) -> FastAPI:
    """The app object with its middleware and error handlers (routes added by the ingress); every answer in
    ``PACED_STATUSES`` first awaits ``before_rejection`` (``deployments.http.pacing``)."""
    api = FastAPI(title="Credit scoring API", version="1.0", description=DESCRIPTION,
                  max_body_size=get_settings().max_body_bytes)

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        exc.__traceback__ = None   # its frames hold the body: not kept while the answer waits
        await before_rejection(request)
        return JSONResponse({"detail": _field_errors(exc)}, status_code=422)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in PACED_STATUSES:
            exc.__traceback__ = None
            await before_rejection(request)
        return await http_exception_handler(request, exc)

    api.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    api.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    return api
