"""The HTTP routes served without Ray: the model's own loader and decision path, and the real prediction log
(``PredictionLog``) over a file log in a temporary folder. Nothing of the log is rewritten here: what the fast
tier reads back through the API is what the file store wrote."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
from fastapi.testclient import TestClient

from core.api_keys import SCOPES, ApiKey, KeyRing, parse_scoped_keys
from core.settings import IngressConfig, LogWriterConfig, Settings
from deployments.decisions import decide, denial_reasons
from deployments.http.admission import Admission, Slot
from deployments.http.app import create_app
from deployments.http.backend import Unavailable
from deployments.http.pacing import RejectionPacer
from deployments.log_service import LogCall, PredictionLog
from deployments.scored import Scored
from models.loader import LoadedModel, load_model
from prediction_log.model_changes import model_change
from prediction_log.records import Block

CONTRACT_REJECTION_DELAY_S = 0.05
"""The contract tests check what a rejection says, not how long it waits (``test_pacing`` checks that): a keyless
422 waits this long here, not the deployment's second, so hundreds of them stay within the fast tier's budget."""
P = ParamSpec("P")
T = TypeVar("T")


@functools.cache
def _served_model() -> LoadedModel:
    """The served model through the scorer's own loader and checks, loaded once per test process."""
    return load_model(None)


class InProcessBackend:
    """A ``deployments.http.backend.Backend`` in this process. Decisions are handed to the log as the ingress's
    shipper hands them to the log writer, and every read first waits for the writes before it, so a read sees
    every decision answered before it (the deployment's window of ``log_flush_interval_s`` aside)."""

    def __init__(self, data_dir: Path, api_key: str = "test-api-key-0123456789", scoped_keys: str = "",
                 scoring_requires_key: bool = False, rejections: RejectionPacer | None = None) -> None:
        model = _served_model()
        self.card, self.classifier, self.reasons, self.threshold = model.card, model.classifier, model.reasons, \
            model.threshold
        self.keys = KeyRing((ApiKey(api_key, frozenset(SCOPES)), *parse_scoped_keys(scoped_keys)))
        self.scoring_requires_key = scoring_requires_key
        defaults = IngressConfig()
        self.rejections = rejections or RejectionPacer(defaults.rejections_per_s, CONTRACT_REJECTION_DELAY_S,
                                                       defaults.max_delayed_rejections)
        self.admission = Admission(defaults.max_in_flight_requests, defaults.max_in_flight_body_bytes)
        self.body_timeout_s = defaults.body_timeout_s
        self.log = PredictionLog(Settings(data_dir=data_dir, database_url=None), LogWriterConfig())
        self.refusing = False
        """What the ingress does when its shipper cannot hand decisions to the log: 503 before scoring."""
        self._writes: list[asyncio.Task[int]] = []
        self._started = False

    @contextmanager
    def admitted(self) -> Iterator[Slot]:
        if self.refusing:
            raise Unavailable("prediction log unavailable (nowhere to record decisions), retry later")
        with self.admission.slot() as slot:
            yield slot

    def _scored(self, rows: np.ndarray) -> Scored:
        probabilities = self.classifier.predict_proba(rows)
        reasons = None if self.reasons is None else denial_reasons(self.reasons, rows, probabilities, self.threshold)
        return Scored(probabilities, self.card["version"], self.threshold, reasons)

    async def decide_single(self, row: np.ndarray, started: float, key: str | None = None) -> dict[str, Any]:
        return decide(row, self._scored(row), (time.perf_counter() - started) * 1000, "predict", self.record)[0]

    async def score_block(self, rows: np.ndarray, key: str | None = None) -> Scored:
        return self._scored(rows)

    async def score_explained(self, rows: np.ndarray) -> tuple[Scored, list[dict[str, Any]]]:
        if self.reasons is None:
            raise LookupError("no LightGBM file")
        return self._scored(rows), self.reasons.explain_dicts(rows)

    def record(self, block: Block, endpoint: str, shadow: Any = None) -> None:
        self._writes.append(asyncio.get_running_loop().create_task(self.log.write(block)))

    async def flush(self) -> None:
        """Every decision answered so far in the log; the scorer's "started" audit entry, as a replica writes it."""
        if not self._started:
            self._started = True
            await self.log.record_model_changes([model_change("started", "Scorer", "in-process", None,
                                                              (self.card["version"], self.threshold))])
        while self._writes:
            await self._writes.pop(0)

    async def model_card(self) -> dict[str, Any]:
        return self.card | {"threshold_in_force": self.threshold}

    async def call_log(self, method: LogCall[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        await self.flush()
        result: T = await self.log.call(method.__name__, *args, **kwargs)
        return result

    def log_shipping(self) -> dict[str, Any]:
        return {"buffered_in_this_ingress": len(self._writes), "log_state": self.log_state()}

    def log_state(self) -> str:
        return "refusing" if self.refusing else "ok"

    async def monitor_once(self) -> dict[str, Any]:
        """A monitoring run now, as the log writer's timer runs one."""
        await self.flush()
        return await self.log.monitor_once()

    async def logged(self) -> Block:
        """Every record the file store holds, in the order written (read back from its day files)."""
        await self.flush()
        store = self.log.store
        assert store is not None
        return await store.records_between(None, None)

    async def outcomes_of(self, request_ids: list[str]) -> dict[str, int]:
        """The stored outcome of each of ``request_ids`` that has one."""
        await self.flush()
        return await self.log.outcome_store().defaulted_of(request_ids)


@contextmanager
def serving(backend: InProcessBackend) -> Iterator[TestClient]:
    """A test client of the API served by ``backend`` (``create_app``, as the ingress builds its own)."""
    with TestClient(create_app(backend)) as client:
        yield client


def on_loop(client: TestClient, coroutine_function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``coroutine_function(*args)`` run on the client's event loop, where the backend's log lives."""
    portal = client.portal
    assert portal is not None, "the client is not open"
    return portal.call(coroutine_function, *args)
