"""The HTTP application of one backend: metadata, body-size limit (413), error format (422), the one 503, paced
rejections, and every route, each file's router included here.

``create_app(backend)`` is what the ingress deployment serves (``Ingress.__serve_build_asgi_app__``) and what the
fast tests serve with an in-process backend: the backend is the app's own (``app.state.backend``), never a module's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from core.schema import DEFAULT_SCHEMA, ModelSchema
from core.settings import get_settings
from deployments.http import (
    fairness_routes,
    inference_protocol,
    log_routes,
    model_routes,
    outcome_routes,
    scoring_routes,
)
from deployments.http.backend import Backend, Unavailable
from deployments.http.deps import RETRY_AFTER
from deployments.http.rows import RowReader
from deployments.http.tensors import TensorError, TensorReader

DESCRIPTION = """Credit-default scoring. `POST /predict` returns the default probability and the
credit decision (denied when the probability is at or above the model's business threshold).
Every decision answered 200 is written to the prediction log."""

PACED_STATUSES = frozenset({401, 403, 415, 422})
"""Rejections a client looping on bad input or guessing keys gets: their answers are paced."""


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors as {field, row, msg, type}; the offending input is not echoed back."""
    errors: list[dict[str, Any]] = []
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


def _protocol_error(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None,
                    detail: list[dict[str, Any]] | None = None) -> Response | None:
    """Under ``/v2`` an error is ``{"error": message}`` (the Open Inference Protocol's, which its clients read);
    ``None`` elsewhere."""
    if not request.url.path.startswith(inference_protocol.PREFIX):
        return None
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _joined(errors: list[dict[str, Any]], shown: int = 3) -> str:
    text = "; ".join(str(e.get("msg")) for e in errors[:shown])
    return text + (f" (and {len(errors) - shown} more)" if len(errors) > shown else "")


def create_app(backend: Backend, schema: ModelSchema = DEFAULT_SCHEMA, model_name: str = "credit") -> FastAPI:
    """The API served by ``backend`` for applicants of ``schema`` (the model's card); ``model_name`` is the model's
    name in the Open Inference Protocol's routes (the Serve application's). A rejection in ``PACED_STATUSES``
    (and a refused tensor) of a request without a known key first waits as the backend's pacer says
    (``deployments.http.pacing``)."""
    app = FastAPI(title="Credit scoring API", version="1.0", description=DESCRIPTION,
                  max_body_size=get_settings().max_body_bytes)
    app.state.backend = backend

    async def paced(request: Request) -> None:
        if not backend.keys.knows(request.headers.get("x-api-key")):
            await backend.rejections.pace()

    async def validation_error(request: Request, exc: Exception) -> Response:
        exc.__traceback__ = None   # its frames hold the body: not kept while the answer waits
        await paced(request)
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        return (_protocol_error(request, 400, _joined(errors), detail=errors)
                or JSONResponse({"detail": errors}, status_code=422))

    async def tensor_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TensorError)
        exc.__traceback__ = None
        await paced(request)
        return JSONResponse({"error": _joined(exc.errors), "detail": exc.errors}, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in PACED_STATUSES:
            exc.__traceback__ = None
            await paced(request)
        return (_protocol_error(request, exc.status_code, str(exc.detail), exc.headers)
                or await http_exception_handler(request, exc))

    async def refused(request: Request, exc: Exception) -> Response:
        """The backend's ``Unavailable`` (admission refused, the log cannot record): 503 + Retry-After."""
        assert isinstance(exc, Unavailable)
        return (_protocol_error(request, 503, exc.what, RETRY_AFTER)
                or JSONResponse({"detail": exc.what}, status_code=503, headers=RETRY_AFTER))

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Unavailable, refused)
    app.add_exception_handler(TensorError, tensor_error)
    routers = (scoring_routes.router(RowReader(schema)), model_routes.router, log_routes.router,
               outcome_routes.router, fairness_routes.router,
               inference_protocol.router(TensorReader(schema), model_name))
    for routes in routers:
        # Each file's routes, added to the app's own list rather than by include_router: FastAPI 0.165 dispatches an
        # included router through a wrapper on every request, a cost on the hot path (docs/performance.md).
        app.router.routes.extend(routes.routes)
    return app
