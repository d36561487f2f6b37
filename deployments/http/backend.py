"""What the HTTP routes need from the serving side, and the scorer's answer type.

The routes (``deployments/http/*_routes.py``) validate, apply the decision rule and build responses;
a ``Backend`` scores, records and reads the log. The Ray ingress deployment is one backend; the
fast tests use an in-process one (``tests/support/in_process.py``: the model's own loader, the real
``PredictionLog`` over a temporary file log), so the whole HTTP contract is tested without starting Ray.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np

from core.api_keys import KeyRing
from deployments.http.pacing import RejectionPacer
from deployments.log_service import LogCall
from deployments.scored import Scored
from prediction_log.records import Block

P = ParamSpec("P")
T = TypeVar("T")


class Unavailable(Exception):
    """A part the request needs (scorer, log) cannot answer now: 503 + Retry-After."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Overloaded(Unavailable):
    """This replica holds as many requests, or body bytes, as it may: 503 + Retry-After."""

    def __init__(self) -> None:
        super().__init__("server overloaded, retry later")


class BodySlot(Protocol):
    """An admitted request's share of the replica's body budget (``deployments.http.admission.Slot``)."""

    def reserve(self, n: int) -> None:
        """Hold ``n`` more bytes of the body; ``Overloaded`` past the budget."""


class Backend(Protocol):
    keys: KeyRing
    scoring_requires_key: bool
    rejections: RejectionPacer

    @property
    def body_timeout_s(self) -> float:
        """A request body not all received within this is answered 408."""

    def admitted(self) -> AbstractContextManager[BodySlot]:
        """Hold a scoring slot (taken before the body is read, which reserves its bytes in the slot as they
        arrive); raise ``Unavailable`` when overloaded or when decisions cannot be recorded."""

    async def decide_single(self, row: np.ndarray, started: float, key: str | None = None) -> dict[str, Any]:
        """One row's decision (the response item), micro-batched with other single-row requests: the
        micro-batch is scored, decided and recorded as one block. ``started``: ``time.perf_counter()``
        when the request arrived (for the logged latency); ``key``: the applicant key a canary routes by."""

    async def score_block(self, rows: np.ndarray, key: str | None = None) -> Scored: ...

    async def score_explained(self, rows: np.ndarray) -> tuple[Scored, list[dict[str, Any]]]:
        """Scores and reason codes from the same model; ``LookupError`` if the model cannot explain."""

    def record(self, block: Block, endpoint: str, shadow: Any = None) -> None:
        """Queue the block's records for the log and count them in the metrics (never awaits); with a
        ``shadow`` (``Scored.shadow``) the records are queued once the challenger answered or gave up."""

    async def model_card(self) -> dict[str, Any]: ...

    async def call_log(self, method: LogCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``method`` (an ``@api_call`` method of ``PredictionLog``) where the log is: the log writer's replica, or
        this process."""

    def log_shipping(self) -> dict[str, Any]:
        """This ingress's records not yet handed to the log, and its log state (for ``/predictions/stats``)."""

    def log_state(self) -> str:
        """``ok``, ``writer_unavailable`` or ``refusing`` (for /health)."""
