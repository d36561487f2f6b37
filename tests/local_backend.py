"""An in-process ``Backend`` for the HTTP routes: a local ONNX session and an in-memory log, no Ray."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow.compute as pc

from core.api_keys import SCOPES, ApiKey, KeyRing, parse_scoped_keys
from core.settings import IngressConfig, LogWriterConfig
from deployments.challenger_report import comparison
from deployments.decisions import decide, denial_reasons
from deployments.fairness import FairnessQuery, fairness_of
from deployments.http.admission import Admission, Slot
from deployments.http.backend import Unavailable
from deployments.http.pacing import RejectionPacer
from deployments.monitoring_run import monitoring_run
from deployments.performance import PerformanceQuery, SummaryQuery, Window, card_of_version, performance
from deployments.scored import Scored
from models.loader import load_model
from prediction_log.aggregates import bucket_for, of_block, summary, window_start
from prediction_log.groups import GroupPost, GroupReceipt, choose
from prediction_log.model_changes import model_change
from prediction_log.outcomes import Labelled, Outcomes, Receipt, reconcile, shadowed_rows
from prediction_log.query import LogQuery
from prediction_log.records import Block, as_dicts, concat

CONTRACT_REJECTION_DELAY_S = 0.05
"""The fast tier's pacing delay: what a rejection past the budget waits is ``test_pacing``'s to check; here it would
only make the contract tests wait a second each."""


class LocalBackend:
    """Scores with the active model in this process and keeps every recorded block."""

    def __init__(self, api_key: str = "test-api-key-0123456789", scoped_keys: str = "", scoring_requires_key: bool = False,
                 rejections: RejectionPacer | None = None) -> None:
        model = load_model(None)   # the scorer's own loader and checks
        self.card, self.classifier, self.reasons, self.threshold = model.card, model.classifier, model.reasons, \
            model.threshold
        self.keys = KeyRing((ApiKey(api_key, frozenset(SCOPES)), *parse_scoped_keys(scoped_keys)))
        self.scoring_requires_key = scoring_requires_key
        defaults = IngressConfig()   # the contract's rejections paced like the ingress's, waiting a moment, not 1 s
        self.rejections = rejections or RejectionPacer(defaults.rejections_per_s, CONTRACT_REJECTION_DELAY_S,
                                                       defaults.max_delayed_rejections)
        self.admission = Admission(defaults.max_in_flight_requests, defaults.max_in_flight_body_bytes)
        self.body_timeout_s = defaults.body_timeout_s
        self.blocks: list[Block] = []
        self.outcomes: dict[str, int] = {}
        self.groups: dict[tuple[str, str], str] = {}
        self.refusing = False
        self.changes = [asdict(model_change("started", "Scorer", "local", None, (self.card["version"],
                                                                                   self.threshold)))]

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
        self.blocks.append(block)

    @property
    def log(self) -> Block:
        return concat(self.blocks)

    async def model_card(self) -> dict[str, Any]:
        return self.card | {"threshold_in_force": self.threshold}

    async def query_log(self, query: LogQuery) -> list[dict[str, Any]]:
        rows = sorted(as_dicts(self.log), key=lambda r: (r["ts"], r["request_id"]), reverse=True)
        if (after := query.after()) is not None:
            rows = [r for r in rows if (datetime.fromisoformat(r["ts"]), r["request_id"]) < after]
        return rows[query.offset:query.offset + query.limit]

    async def find_decision(self, request_id: str) -> dict[str, Any] | None:
        return next((r for r in as_dicts(self.log) if r["request_id"] == request_id), None) if self.blocks else None

    async def log_stats(self) -> dict[str, Any]:
        return {"backend": "memory", "records_in_store": len(self.log)}

    def _between(self, since: datetime | None, until: datetime | None) -> Block:
        """The logged records with ``since <= ts < until``."""
        log = self.log
        ts = log.column("ts")
        keep = pc.and_(pc.greater_equal(ts, since) if since else pc.is_valid(ts),
                       pc.less(ts, until) if until else pc.is_valid(ts))
        return log.filter(keep)

    async def log_summary(self, query: SummaryQuery) -> dict[str, Any]:
        bucket = query.bucket or bucket_for(query.since, query.until)
        return summary(of_block(self._between(window_start(query.since, bucket), query.until), bucket), bucket)

    async def model_changes(self, limit: int) -> list[dict[str, Any]]:
        return self.changes[::-1][:limit]

    async def monitoring_runs(self, limit: int) -> list[dict[str, Any]]:
        """One run computed now over the in-memory log (the log writer computes them on a timer)."""
        async def sample_between(since: datetime, until: datetime, rows: int) -> tuple[Block, int]:
            window = self._between(since, until)
            return window.slice(0, rows), len(window)

        async def labelled_between(since: datetime, until: datetime, version: str | None) -> Labelled:
            return self.labelled(PerformanceQuery(since=since, until=until, model_version=version))

        run = await monitoring_run(datetime.now(timezone.utc), LogWriterConfig(), sample_between, labelled_between,
                                   card_of_version)
        return [asdict(run)][:limit]

    async def record_outcomes(self, outcomes: Outcomes) -> Receipt:
        logged = set(self.log.column("request_id").to_pylist()) if self.blocks else set()
        chosen, receipt = reconcile(outcomes, logged, {i: self.outcomes[i] for i in outcomes.request_ids
                                                        if i in self.outcomes})
        self.outcomes.update((outcomes.request_ids[i], outcomes.defaulted[i]) for i in chosen)
        return receipt

    def labelled(self, query: PerformanceQuery) -> Labelled:
        log = self.log
        ids = log.column("request_id").to_pylist()
        versions = np.array(log.column("model_version").to_pylist(), dtype=object)
        keep = np.array([i in self.outcomes for i in ids], dtype=bool)
        if query.model_version is not None:
            keep &= versions == query.model_version
        ts = log.column("ts").to_numpy()
        for bound, inside in ((query.since, np.greater_equal), (query.until, np.less)):
            if bound is not None:
                keep &= inside(ts, np.datetime64(bound.astimezone(timezone.utc).replace(tzinfo=None), "us"))
        return Labelled(ts[keep], versions[keep],
                        log.column("probability_default").to_numpy()[keep], log.column("threshold").to_numpy()[keep],
                        np.array([self.outcomes[i] for i, k in zip(ids, keep) if k], dtype=np.int8))

    async def performance(self, query: PerformanceQuery) -> dict[str, Any]:
        return performance(self.labelled(query), query.by, card_of_version)

    async def challenger_comparison(self, window: Window) -> dict[str, Any]:
        return comparison(shadowed_rows(self.log, self.outcomes))

    async def record_groups(self, post: GroupPost) -> GroupReceipt:
        logged = set(self.log.column("request_id").to_pylist()) if self.blocks else set()
        chosen, receipt = choose(post, logged, {k for k in self.groups})
        self.groups.update(((post.request_ids[i], post.attributes[i]), post.groups[i]) for i in chosen)
        return receipt

    async def fairness(self, query: FairnessQuery) -> dict[str, Any]:
        memberships: dict[str, dict[str, str]] = {}
        for (request_id, attribute), group in self.groups.items():
            memberships.setdefault(attribute, {})[request_id] = group
        return fairness_of(self._between(query.since, query.until), memberships, dict(self.outcomes), query)

    def log_state(self) -> str:
        return "refusing" if self.refusing else "ok"


@contextmanager
def routes_bound_to(backend: LocalBackend) -> Iterator[None]:
    """The HTTP routes served by ``backend`` for a while, then by whatever served them before (the module
    keeps one binding per process: the session's in-process API goes on afterwards)."""
    from deployments.http import binding, routes

    previous = binding._backend
    routes.bind(backend)
    try:
        yield
    finally:
        binding._backend = previous
