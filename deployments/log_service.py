"""The prediction log as one service, without Ray: every write, read and report of the log is written once here.

``PredictionLog`` stores blocks of decisions in the configured store (PostgreSQL, or the JSONL file log), spools
them while PostgreSQL is away and replays the spool, keeps the rows a database refuses, runs the monitoring, and
answers every call the HTTP API makes of the log. The log-writer deployment (``deployments.log_writer``) hosts one
and adds only what a deployment adds (its loops, metrics, the node it runs on); the fast tests drive one over a
temporary file log. A method the API may call is marked ``@api_call``: the ingress forwards it by name (``call``),
so adding a read is its method here and its route (``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from core.settings import LogWriterConfig, Settings
from deployments.challenger_report import comparison
from deployments.fairness import FairnessQuery, fairness_of, window_counts
from deployments.monitoring_run import monitoring_run
from deployments.performance import PerformanceQuery, SummaryQuery, Window, card_of_version, performance
from prediction_log.appender import LineAppender
from prediction_log.files.jsonl import to_json_lines
from prediction_log.groups import GroupPost, GroupReceipt
from prediction_log.model_changes import ModelChange
from prediction_log.outcomes import Outcomes, OutcomeStore, Receipt
from prediction_log.query import LogQuery
from prediction_log.records import Block
from prediction_log.scan_deadline import scans_within
from prediction_log.spool import Spool
from prediction_log.store import Store
from prediction_log.stores import LogStores, connect_postgres_stores, file_stores

logger = logging.getLogger("ray.serve")
P = ParamSpec("P")
T = TypeVar("T")
LogCall = Callable[Concatenate["PredictionLog", P], Awaitable[T]]
"""A call of the log the API makes: an unbound ``PredictionLog`` method marked ``@api_call``."""


class LogUnavailable(RuntimeError):
    """The configured store cannot be read right now."""


class LogMetrics(Protocol):
    """Where the log reports what it does (``deployments.metrics.LogWriterMetrics`` in a deployment)."""

    def count(self, outcome: str, records: int) -> None: ...

    def queued(self, records: int) -> None: ...

    def spool_waiting(self, records: int) -> None: ...

    def monitored(self, run: dict[str, Any]) -> None: ...


class NoMetrics:
    """A log nobody scrapes (tools, tests)."""

    def count(self, outcome: str, records: int) -> None: ...

    def queued(self, records: int) -> None: ...

    def spool_waiting(self, records: int) -> None: ...

    def monitored(self, run: dict[str, Any]) -> None: ...


def api_call(method: Callable[Concatenate[PredictionLog, P], Awaitable[T]]) -> Callable[Concatenate[PredictionLog, P],
                                                                                        Awaitable[T]]:
    """Mark a method the HTTP API may call (``PredictionLog.call``); its scans of the file log stop at
    ``read_timeout_s`` (``scan_deadline``), so a timed-out request leaves no scan running on a read thread."""
    @functools.wraps(method)
    async def bounded(self: PredictionLog, *args: P.args, **kwargs: P.kwargs) -> T:
        with scans_within(self.config.read_timeout_s):
            return await method(self, *args, **kwargs)
    bounded.api_call = True   # type: ignore[attr-defined]  # the mark ``call`` checks
    return bounded


class PredictionLog:
    """The log over its store; ``store`` is None while PostgreSQL is unreachable (blocks are spooled)."""

    def __init__(self, settings: Settings, config: LogWriterConfig, metrics: LogMetrics | None = None) -> None:
        self.settings, self.config = settings, config
        self.metrics: LogMetrics = metrics or NoMetrics()
        self.dsn = settings.database_url
        self.spool = Spool(settings.data_dir / "spool", "log-writer", config.spool_quota_bytes)
        self.rejected_path = settings.data_dir / "rejected.jsonl"
        self._rejected = LineAppender(self.rejected_path)
        self.stores: LogStores | None = None
        """The log's store and those beside it; None while PostgreSQL is unreachable (blocks are spooled)."""
        self.counters = {"written": 0, "spooled": 0, "replayed": 0, "rejected": 0}
        self._in_flight = 0
        self._down_logged = False
        self._replay_lock = asyncio.Lock()
        if self.dsn is None:
            self.stores = file_stores(settings, config.file_reads)
            logger.info("prediction log: DATABASE_URL unset, logging to %s", settings.data_dir)

    @property
    def store(self) -> Store | None:
        """The log's own store (None while PostgreSQL is unreachable)."""
        return self.stores.log if self.stores is not None else None

    def apply(self, config: LogWriterConfig) -> None:
        """A new configuration (the deployment's reconfigure)."""
        self.config = config
        self.spool.quota_bytes = config.spool_quota_bytes
        if self.store is not None:
            self.store.set_write_timeout(config.statement_timeout_s)

    # ---- writes ----

    def _count(self, outcome: str, records: int) -> None:
        self.counters[outcome] += records
        self.metrics.count(outcome, records)

    async def write(self, block: Block) -> int:
        """Store (or spool) a block; returns how many records were accepted. Raises only when the file log cannot
        append: the caller keeps the block and retries (request_id makes the retry harmless)."""
        if not len(block):
            return 0
        self._in_flight += len(block)
        self.metrics.queued(self._in_flight)
        try:
            return await self._store_or_spool(block)
        finally:
            self._in_flight -= len(block)
            self.metrics.queued(self._in_flight)

    async def _store_or_spool(self, block: Block) -> int:
        store = self.store
        if store is not None:
            try:
                self._count("written", await store.insert(block))
                self._up()
                return len(block)
            except store.data_errors as exc:
                await self._row_by_row(store, block, exc)
                return len(block)
            except Exception as exc:  # connection lost, statement timeout, server shutting down, disk full
                if not store.spools_on_failure:
                    raise  # the local disk: the caller keeps the records and retries
                self._went_down(exc)
        await self.spool.append(block)
        self._count("spooled", len(block))
        return len(block)

    async def _row_by_row(self, store: Store, block: Block, batch_error: BaseException) -> None:
        """Store what the store accepts; keep refused rows in the rejected file."""
        refused: list[str] = []
        for i in range(len(block)):
            try:
                self._count("written", await store.insert_one(block.slice(i, 1)))
            except store.data_errors as exc:
                record = json.loads(to_json_lines(block.slice(i, 1)))
                refused.append(json.dumps({"error": str(exc), "record": record}))
        if refused:
            logger.error("prediction log: database refused %d of %d records (%s); kept in %s",
                         len(refused), len(block), batch_error, self.rejected_path)
            await asyncio.to_thread(self._append_rejected, refused)
            self._count("rejected", len(refused))

    def _append_rejected(self, lines: list[str]) -> None:
        self._rejected.append("".join(line + "\n" for line in lines).encode())

    def _went_down(self, exc: BaseException) -> None:
        """PostgreSQL failed or hung: spool from now on, reconnect in the background."""
        if not self._down_logged:
            logger.error("prediction log: database unavailable (%s: %s); spooling to %s",
                         type(exc).__name__, exc, self.spool.directory)
            self._down_logged = True
        store = self.store
        self.stores = None
        if store is not None:
            asyncio.get_running_loop().create_task(store.close())

    def _up(self) -> None:
        if self._down_logged:
            logger.warning("prediction log: database is back; writing to it again")
            self._down_logged = False

    async def maintain_once(self) -> None:
        """Connect when needed, and replay the spool when the store is up (the deployment calls this in a loop)."""
        try:
            if self.stores is None and self.dsn is not None:
                self.stores = await connect_postgres_stores(
                    self.dsn, statement_timeout_s=self.config.statement_timeout_s,
                    write_connections=self.config.write_connections,
                    read_connections=self.config.read_connections, read_timeout_s=self.config.read_timeout_s)
            if self.store is not None and self.spool.pending_files():
                await self._replay_spool()
                self._up()
        except Exception as exc:
            if self.store is not None and not self.store.spools_on_failure:   # the file stays; retried
                logger.error("prediction log: replay into the file log failed (%s: %s); retrying",
                             type(exc).__name__, exc)
            else:
                self._went_down(exc)
        self.metrics.spool_waiting(self.spool.record_count())

    async def _replay_spool(self) -> None:
        async with self._replay_lock:
            store = self.store
            assert store is not None
            try:
                for path in self.spool.claim():
                    total = 0
                    try:
                        for chunk in self.spool.read_chunks(path, self.config.replay_chunk_records):
                            total += await self._replay_chunk(store, chunk)
                    except FileNotFoundError:   # a shared spool folder: an ingress replayed it meanwhile
                        continue
                    path.unlink(missing_ok=True)
                    self._count("replayed", total)
                    logger.info("prediction log: replayed %d records from %s", total, path.name)
            finally:
                store.replay_done()

    async def _replay_chunk(self, store: Store, chunk: Block) -> int:
        """Spooled records stored once by request_id; rows the store refuses go to the rejected file (kept, not
        retried for ever); how many were new."""
        try:
            return await store.replay(chunk)
        except store.data_errors as exc:
            await self._row_by_row(store, chunk, exc)
            return 0

    async def replay(self, block: Block) -> int:
        """Spooled records from another node's spool (``deployments.node_spool``): each stored once by
        request_id; raises while the store is down, so the caller keeps its file."""
        async with self._replay_lock:
            store = self.store
            if store is None:
                raise ConnectionError("prediction log store unavailable")
            try:
                stored = await self._replay_chunk(store, block)
            finally:
                store.replay_done()
        self._count("replayed", stored)
        return stored

    async def record_model_changes(self, changes: list[ModelChange]) -> None:
        """Append scorer replicas' audit entries (stored once by id: a replica retries until this returns)."""
        await self._live().model_changes.record(changes)

    async def monitor_once(self) -> dict[str, Any]:
        """Compute, store and publish one monitoring run now (``deployments.monitoring_run``); returns it."""
        stores = self._live()
        run = asdict(await monitoring_run(datetime.now(UTC), self.config, stores.log.sample_between,
                                          stores.outcomes.for_reports, card_of_version, stores.log.histograms,
                                          stores.log.scored))
        await stores.monitoring_runs.record(run)
        self.metrics.monitored(run)
        return run

    def _live(self) -> LogStores:
        if self.stores is None:
            raise LogUnavailable("prediction log database is unavailable")
        return self.stores

    def outcome_store(self) -> OutcomeStore:
        return self._live().outcomes

    # ---- what the HTTP API calls (``@api_call``) ----

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The method ``name`` (marked ``@api_call``), as the ingress forwards it; anything else is refused."""
        method = getattr(type(self), name, None)
        if not getattr(method, "api_call", False):
            raise AttributeError(f"{name!r} is not a call the API may make of the prediction log")
        return await method(self, *args, **kwargs)   # type: ignore[misc]  # checked just above

    @api_call
    async def query(self, query: LogQuery) -> list[dict[str, Any]]:
        """Newest-first page of the log."""
        return await self._live().log.query(query)

    @api_call
    async def find(self, request_id: str) -> dict[str, Any] | None:
        """One decision's record (``GET /decisions/{request_id}``), or None."""
        return await self._live().log.find(request_id)

    @api_call
    async def stats(self) -> dict[str, Any]:
        """Counters, backend, store state and spool size (for /health, tests, metrics and the benchmark)."""
        store = self.store
        stored = None
        if store is not None:
            try:
                stored = await store.count()
            except Exception:   # a hung or failing database: report it, don't fail the call
                stored = None
        unreadable = self.stores.unreadable_lines() if self.stores is not None else {}
        return {"backend": "postgresql" if self.dsn else "file", "store_up": store is not None,
                "records_in_store": stored, "spool_records": self.spool.record_count(), **self.counters,
                "unreadable_lines": unreadable}

    @api_call
    async def summary(self, query: SummaryQuery) -> dict[str, Any]:
        """The window's aggregates (``prediction_log.aggregates``): counts and rates without reading rows."""
        return await self._live().log.summary(query.since, query.until, query.bucket)

    @api_call
    async def model_changes(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries of model changes, newest first."""
        return await self._live().model_changes.newest(limit)

    @api_call
    async def monitoring_runs(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` monitoring runs, newest first."""
        return await self._live().monitoring_runs.newest(limit)

    @api_call
    async def record_outcomes(self, outcomes: Outcomes) -> Receipt:
        """Store outcomes by the rule of ``prediction_log.outcomes.reconcile``."""
        return await self.outcome_store().record(outcomes)

    @api_call
    async def performance(self, query: PerformanceQuery) -> dict[str, Any]:
        """Realized and estimated performance computed here, beside the store, from its counts: only the figures
        travel."""
        labelled = await self.outcome_store().for_reports(query.since, query.until, query.model_version)
        scored = await self._live().log.scored(query.since, query.until, query.model_version)
        return await asyncio.to_thread(performance, labelled, query.by, card_of_version, scored)

    @api_call
    async def challenger_comparison(self, window: Window) -> dict[str, Any]:
        """``deployments.challenger_report.comparison`` of the window's shadowed decisions."""
        shadowed = await self.outcome_store().shadowed_for_reports(window.since, window.until)
        return await asyncio.to_thread(comparison, shadowed)

    @api_call
    async def record_groups(self, post: GroupPost) -> GroupReceipt:
        """Store group membership by the rule of ``prediction_log.groups.choose``."""
        return await self._live().groups.record(post)

    @api_call
    async def fairness(self, query: FairnessQuery) -> dict[str, Any]:
        """The window's decisions counted per group with their outcomes; figures computed here, beside the store."""
        assert query.since is not None and query.until is not None   # FairnessQuery bounds every window
        counts = await window_counts(self._live(), query.since, query.until)
        return await asyncio.to_thread(fairness_of, counts, query)

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
