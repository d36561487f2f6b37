"""How an ingress replica uses the challenger: which requests it answers (canary), and its shadow scores.

The challenger's mode is read from its own deployment (``Scorer.routing``), polled every
``CHALLENGER_POLL_S``, so one edit of its user_config in serve_config.yaml turns it on, changes it or turns
it off. Shadow calls never hold an answer: they run beside the champion's call, and a record waits for
its challenger at most ``timeout_s`` after the champion answered (then it is logged without it).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.settings import ChallengerConfig
from deployments.scored import Scored

BUCKETS = 10_000


_DEFAULTS = ChallengerConfig()


@dataclass(frozen=True)
class Routing:
    """The challenger's routing as the ingresses follow it; defaults are ``ChallengerConfig``'s (stated there)."""

    mode: Literal["disabled", "shadow", "canary"] = _DEFAULTS.mode
    canary_percent: float = _DEFAULTS.canary_percent
    timeout_s: float = _DEFAULTS.timeout_s
    max_pending_blocks: int = _DEFAULTS.max_pending_blocks
    version: str | None = None

    def answers(self, key: str | None, rows: np.ndarray) -> bool:
        """Whether the challenger answers this request (canary): by the hash of the applicant key, or without one
        of the applicant's data, so resubmitting the same application never draws the other model."""
        if self.mode != "canary" or self.canary_percent <= 0:
            return False
        material = key.encode() if key is not None else np.ascontiguousarray(rows, dtype=np.float64).tobytes()
        bucket = int.from_bytes(hashlib.sha256(material).digest()[:8], "big") % BUCKETS
        return bucket < self.canary_percent * BUCKETS / 100


class ShadowCalls:
    """Shadow scoring tasks of one ingress replica, bounded by ``max_pending_blocks``."""

    def __init__(self, call: Callable[[np.ndarray], Awaitable[Scored]], count: Callable[[str, int], None]) -> None:
        self._call = call
        self._count = count
        self.pending: set[asyncio.Task[Any]] = set()

    def start(self, block: np.ndarray, routing: Routing) -> asyncio.Task[Scored] | None:
        """The challenger's scoring of ``block``, started now; None when not in shadow mode or at the bound."""
        if routing.mode != "shadow":
            return None
        if len(self.pending) >= routing.max_pending_blocks:
            self._count("skipped", len(block))
            return None
        task = asyncio.ensure_future(asyncio.wait_for(self._call(block), routing.timeout_s))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task
