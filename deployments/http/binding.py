"""The HTTP app object and what every route shares: the bound backend, the one 503, keys, JSON in and out.

The serving side binds itself as the ``Backend`` (the Ray ingress in production, an in-process one in the fast
tests); ``routes`` (scoring) and ``data_routes`` (the keyed personal-data routes) register on ``api``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse

from core.api_keys import Scope
from deployments.http.admission import read_body
from deployments.http.api import create_api
from deployments.http.backend import Backend, BodySlot, Unavailable

logger = logging.getLogger("ray.serve")
RETRY_AFTER = {"Retry-After": "1"}
_backend: Backend | None = None


async def _pace_rejection(request: Request) -> None:
    """A rejection of a request without a known key waits as the backend's pacer says."""
    if _backend is not None and not _backend.keys.knows(request.headers.get("x-api-key")):
        await _backend.rejections.pace()


api = create_api(_pace_rejection)


async def _refused(request: Request, exc: Exception) -> Response:
    """The backend's ``Unavailable`` (admission refused, the log cannot record): 503 + Retry-After, wherever a route
    meets it."""
    assert isinstance(exc, Unavailable)
    return JSONResponse({"detail": exc.what}, status_code=503, headers=RETRY_AFTER)


api.add_exception_handler(Unavailable, _refused)


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


def unavailable(what: str, cause: BaseException | None = None) -> HTTPException:
    """The one 503 of this API: what is unavailable, and when to retry (the cause goes to the replica's log)."""
    if cause is not None:
        logger.warning("%s unavailable: %s: %s", what, type(cause).__name__, cause)
    return HTTPException(503, f"{what} unavailable, retry later", headers=RETRY_AFTER)


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


async def _json_body(request: Request, slot: BodySlot | None, timeout_s: float) -> bytes:
    """The raw body (``admission.read_body``); 415 for anything but JSON, so a cross-site form post (text/plain)
    cannot write decisions."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "Content-Type must be application/json")
    return await read_body(request, slot, timeout_s)


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


