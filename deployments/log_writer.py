"""Log-writer deployment: stores blocks of decisions; never loses an acknowledged one.

* ``DATABASE_URL`` unset → the JSONL file log in ``DATA_DIR`` (the embedded default).
* ``DATABASE_URL`` set → PostgreSQL (binary COPY, idempotent on request_id). While the database
  is unreachable, failing or hanging (every statement has a timeout), blocks go to a local spool
  (fsync'd, with a quota) and are replayed when it is back. Rows the database refuses (data
  errors) go, one by one, to ``DATA_DIR/rejected.jsonl`` with the error, so nothing answered 200
  disappears.

``write`` returns only once its records are stored or spooled; otherwise it raises and the
caller (the ingress's log shipper) keeps the block, and request_id makes the retry harmless.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import ray
from ray import serve

from core.settings import LogWriterConfig, Settings, get_settings
from deployments.challenger_report import comparison
from deployments.fairness import FAIRNESS_COLUMNS, FairnessQuery, fairness_of
from deployments.loopback import bind_replica_servers_to_loopback
from deployments.metrics import LogWriterMetrics
from deployments.monitoring_run import monitoring_run
from deployments.performance import PerformanceQuery, SummaryQuery, Window, card_of_version, performance
from deployments.reconfigure import validated_or_kept
from prediction_log.appender import LineAppender
from prediction_log.file_store import FileStore
from prediction_log.groups import GroupPost, GroupReceipt, GroupStore
from prediction_log.model_changes import ModelChange
from prediction_log.outcomes import Outcomes, OutcomeStore, Receipt
from prediction_log.postgres_store import PostgresStore
from prediction_log.query import LogQuery
from prediction_log.records import Block, to_json_lines
from prediction_log.scan_deadline import scans_within
from prediction_log.spool import Spool
from prediction_log.store import Store
from prediction_log.stores import (
    groups_beside,
    model_changes_beside,
    monitoring_runs_beside,
    open_file_log,
    outcomes_beside,
)

logger = logging.getLogger("ray.serve")


class LogUnavailable(RuntimeError):
    """The configured store cannot be read right now."""


def _http_read(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A read an HTTP request waits for: its scans of the file log stop at ``read_timeout_s``
    (``scan_deadline``), so a timed-out request leaves no scan running on a read thread."""
    @functools.wraps(method)
    async def bounded(self: "LogWriter", *args: Any, **kwargs: Any) -> Any:
        with scans_within(self.config.read_timeout_s):
            return await method(self, *args, **kwargs)
    return bounded


@serve.deployment
class LogWriter:
    def __init__(self) -> None:
        bind_replica_servers_to_loopback()
        settings = get_settings()
        self.config = LogWriterConfig()
        self._configured = False
        self.settings = settings
        self.data_dir = settings.data_dir
        self.dsn = settings.database_url
        self.spool = Spool(self.data_dir / "spool", "log-writer", self.config.spool_quota_bytes)
        self.rejected_path = self.data_dir / "rejected.jsonl"
        self._rejected = LineAppender(self.rejected_path)
        self.store: Store | None = None
        self._beside_stores: dict[str, tuple[Store, Any]] = {}
        self.counters = {"written": 0, "spooled": 0, "replayed": 0, "rejected": 0}
        self.metrics = LogWriterMetrics()
        self._in_flight = 0
        self._down_logged = False
        self._replay_lock = asyncio.Lock()
        if self.dsn is None:
            self.store = open_file_log(settings, self.config.file_reads)
            logger.info("log writer: DATABASE_URL unset, logging to %s", self.store.directory)
        self._maintenance = asyncio.get_event_loop().create_task(self._maintain())
        self._monitor_now = asyncio.Event()
        self._monitoring = asyncio.get_event_loop().create_task(self._monitor())

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply an edited user_config; an invalid one is refused (logged) and the one in force stays."""
        config = validated_or_kept(LogWriterConfig, user_config, self.config if self._configured else None,
                                   "log writer")
        if config is None:
            return
        if config.monitoring_interval_s != self.config.monitoring_interval_s:
            self._monitor_now.set()   # a shortened interval applies now, not after the old one
        self._configured, self.config = True, config
        self.spool.quota_bytes = self.config.spool_quota_bytes
        if self.store is not None:
            self.store.set_write_timeout(self.config.statement_timeout_s)

    def _count(self, outcome: str, records: int) -> None:
        self.counters[outcome] += records
        self.metrics.count(outcome, records)

    async def write(self, block: Block) -> int:
        """Store (or spool) a block; returns how many records were accepted."""
        if not len(block):
            return 0
        self._in_flight += len(block)
        self.metrics.queue.set(self._in_flight)
        try:
            return await self._store_or_spool(block)
        finally:
            self._in_flight -= len(block)
            self.metrics.queue.set(self._in_flight)

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
            logger.error("log writer: database refused %d of %d records (%s); kept in %s",
                         len(refused), len(block), batch_error, self.rejected_path)
            await asyncio.to_thread(self._append_rejected, refused)
            self._count("rejected", len(refused))

    def _append_rejected(self, lines: list[str]) -> None:
        self._rejected.append("".join(line + "\n" for line in lines).encode())

    def _went_down(self, exc: BaseException) -> None:
        """PostgreSQL failed or hung: spool from now on, reconnect in the background."""
        if not self._down_logged:
            logger.error("log writer: database unavailable (%s: %s); spooling to %s",
                         type(exc).__name__, exc, self.spool.directory)
            self._down_logged = True
        store, self.store = self.store, None
        if store is not None:
            asyncio.get_event_loop().create_task(store.close())

    def _up(self) -> None:
        if self._down_logged:
            logger.warning("log writer: database is back; writing to it again")
            self._down_logged = False

    async def _maintain(self) -> None:
        """Connect when needed, and replay the spool whenever the store is up."""
        while True:
            try:
                if self.store is None and self.dsn is not None:
                    self.store = await PostgresStore.connect(
                        self.dsn, statement_timeout_s=self.config.statement_timeout_s,
                        write_connections=self.config.write_connections,
                        read_connections=self.config.read_connections, read_timeout_s=self.config.read_timeout_s)
                if self.store is not None and self.spool.pending_files():
                    await self._replay()
                    self._up()
            except Exception as exc:
                if self.store is not None and not self.store.spools_on_failure:   # the file stays; retried
                    logger.error("log writer: replay into the file log failed (%s: %s); retrying",
                                 type(exc).__name__, exc)
                else:
                    self._went_down(exc)
            self.metrics.spool.set(self.spool.record_count())
            await asyncio.sleep(self.config.retry_interval_s)

    async def _replay(self) -> None:
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
                    logger.info("log writer: replayed %d records from %s", total, path.name)
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

    async def node_id(self) -> str:
        """The Ray node this writer runs on (an ingress elsewhere replays its node's spool through ``replay``)."""
        return ray.get_runtime_context().get_node_id()

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

    async def _monitor(self) -> None:
        """A monitoring run (``deployments.monitoring_run``) every ``monitoring_interval_s``, the first at start:
        stored beside the log, published as gauges; a failed run is logged and retried at the next interval."""
        while True:
            try:
                if self.store is not None:
                    await self.monitor_once()
            except Exception as exc:
                logger.warning("log writer: monitoring run failed (%s: %s)", type(exc).__name__, exc)
            self._monitor_now.clear()
            try:
                await asyncio.wait_for(self._monitor_now.wait(), self.config.monitoring_interval_s)
            except asyncio.TimeoutError:
                pass

    async def monitor_once(self) -> dict[str, Any]:
        """Compute, store and publish one monitoring run now; returns it."""
        store = self._live_store()
        run = asdict(await monitoring_run(datetime.now(timezone.utc), self.config, store.sample_between,
                                          self._outcome_store().for_reports, card_of_version, store.histograms))
        await self._beside("monitoring_runs", monitoring_runs_beside).record(run)
        self.metrics.monitored(run)
        return run

    @_http_read
    async def monitoring_runs(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` monitoring runs, newest first."""
        return await self._beside("monitoring_runs", monitoring_runs_beside).newest(limit)

    @_http_read
    async def query(self, query: LogQuery) -> list[dict]:
        """Newest-first page of the log."""
        return await self._live_store().query(query)

    def _live_store(self) -> Store:
        if self.store is None:
            raise LogUnavailable("prediction log database is unavailable")
        return self.store

    def _beside(self, kind: str, make: Callable[[Store, Settings], Any]) -> Any:
        """The outcome, group or model-change store beside the current log store (a new one after a reconnect)."""
        store = self._live_store()
        held = self._beside_stores.get(kind)
        if held is None or held[0] is not store:
            self._beside_stores[kind] = held = (store, make(store, self.settings))
        return held[1]

    @_http_read
    async def find(self, request_id: str) -> dict[str, Any] | None:
        """One decision's record (``GET /decisions/{request_id}``)."""
        return await self._live_store().find(request_id)

    def _outcome_store(self) -> OutcomeStore:
        return self._beside("outcomes", outcomes_beside)

    def _group_store(self) -> GroupStore:
        return self._beside("groups", groups_beside)

    @_http_read
    async def record_outcomes(self, outcomes: Outcomes) -> Receipt:
        return await self._outcome_store().record(outcomes)

    @_http_read
    async def performance(self, query: PerformanceQuery) -> dict[str, Any]:
        """Computed here, beside the store, from its counts (PostgreSQL) or its labelled rows (file log)."""
        labelled = await self._outcome_store().for_reports(query.since, query.until, query.model_version)
        return await asyncio.to_thread(performance, labelled, query.by, card_of_version)

    @_http_read
    async def challenger_comparison(self, window: Window) -> dict[str, Any]:
        shadowed = await self._outcome_store().shadowed_for_reports(window.since, window.until)
        return await asyncio.to_thread(comparison, shadowed)

    @_http_read
    async def record_groups(self, post: GroupPost) -> GroupReceipt:
        return await self._group_store().record(post)

    @_http_read
    async def summary(self, query: SummaryQuery) -> dict[str, Any]:
        """The window's aggregates (``prediction_log.aggregates``): counts and rates without reading rows."""
        return await self._live_store().summary(query.since, query.until, query.bucket)

    async def record_model_changes(self, changes: list[ModelChange]) -> None:
        """Append scorer replicas' audit entries (stored once by id: a replica retries until this returns)."""
        await self._beside("model_changes", model_changes_beside).record(changes)

    @_http_read
    async def model_changes(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, newest first."""
        return await self._beside("model_changes", model_changes_beside).newest(limit)

    @_http_read
    async def fairness(self, query: FairnessQuery) -> dict[str, Any]:
        """The window's decisions with their groups and outcomes; figures computed here, beside the store."""
        block = await self._live_store().records_between(query.since, query.until, FAIRNESS_COLUMNS)
        ids = block.column("request_id").to_pylist()
        memberships = await self._group_store().of(ids)
        defaulted = await self._outcome_store().defaulted_of(ids)
        return await asyncio.to_thread(fairness_of, block, memberships, defaulted, query)

    async def stats(self) -> dict[str, Any]:
        """Counters, backend, store state and spool size (for /health, tests, metrics and the benchmark)."""
        store = self.store
        stored = None
        if store is not None:
            try:
                stored = await store.count()
            except Exception:   # a hung or failing database: report it, don't fail the call
                stored = None
        return {"backend": "postgresql" if self.dsn else FileStore.kind, "store_up": store is not None,
                "records_in_store": stored, "spool_records": self.spool.record_count(), **self.counters}

    async def __del__(self) -> None:
        self._maintenance.cancel()
        self._monitoring.cancel()
        if self.store is not None:
            await self.store.close()
