"""What every route shares: its backend (the app's, ``app.state.backend``), key scopes as dependencies, the one
503, JSON in and out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import orjson
from fastapi import Depends, Header, HTTPException, Request, Response

from core.api_keys import Scope
from deployments.http.admission import read_body
from deployments.http.backend import Backend, BodySlot
from deployments.log_service import LogCall

logger = logging.getLogger("ray.serve")
RETRY_AFTER = {"Retry-After": "1"}
P = ParamSpec("P")
T = TypeVar("T")


async def get_backend(request: Request) -> Backend:
    """The backend of the app serving this request (``create_app``); async: a plain function would be run in a
    thread pool per request."""
    backend: Backend = request.app.state.backend
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]
ApiKeyHeader = Annotated[str | None, Header(alias="x-api-key", description="A key with the route's scope")]


def require(b: Backend, x_api_key: str | None, scope: Scope) -> None:
    """401 without a valid key, 403 for a valid key without ``scope``."""
    if b.keys.allows(x_api_key, scope):
        return
    if b.keys.knows(x_api_key):
        raise HTTPException(403, f"this X-API-Key lacks the scope {scope!r}")
    raise HTTPException(401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})


def _scoped(scope: Scope) -> Callable[..., Awaitable[Backend]]:
    """The dependency that lets a request through with a key holding ``scope`` (else 401/403)."""
    async def authorized(b: BackendDep, x_api_key: ApiKeyHeader = None) -> Backend:
        require(b, x_api_key, scope)
        return b
    return authorized


Reader = Annotated[Backend, Depends(_scoped("read"))]
"""The backend, for a request whose X-API-Key has the scope ``read`` (else 401/403)."""
OutcomeWriter = Annotated[Backend, Depends(_scoped("outcomes"))]
"""... the scope ``outcomes``."""
FairnessReader = Annotated[Backend, Depends(_scoped("fairness"))]
"""... the scope ``fairness``."""


def unavailable(what: str, cause: BaseException | None = None) -> HTTPException:
    """The one 503 of this API: what is unavailable, and when to retry (the cause goes to the replica's log)."""
    if cause is not None:
        logger.warning("%s unavailable: %s: %s", what, type(cause).__name__, cause)
    return HTTPException(503, f"{what} unavailable, retry later", headers=RETRY_AFTER)


def json_response(content: Any) -> Response:
    """orjson-encoded: the declared ``response_model`` documents the shape, this writes it without a second pass."""
    return Response(orjson.dumps(content), media_type="application/json")


async def json_body(request: Request, slot: BodySlot | None, timeout_s: float) -> bytes:
    """The raw body (``admission.read_body``); 415 for anything but JSON, so a cross-site form post (text/plain)
    cannot write decisions."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "Content-Type must be application/json")
    return await read_body(request, slot, timeout_s)


async def call_log(b: Backend, method: LogCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``method`` (a ``PredictionLog`` method marked ``@api_call``) where the log is; 503 when it fails."""
    try:
        return await b.call_log(method, *args, **kwargs)
    except Exception as exc:
        raise unavailable("prediction log", exc) from exc
