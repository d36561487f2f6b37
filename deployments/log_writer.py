"""Log-writer deployment: stores batches of decisions; never loses an acknowledged one.

* ``DATABASE_URL`` unset → the JSONL file log in ``DATA_DIR`` (the embedded default).
* ``DATABASE_URL`` set → PostgreSQL (batched COPY, idempotent on request_id). While the
  database is unreachable or failing, batches go to a local spool (fsync'd) and are
  replayed when it is back. Rows the database refuses (data errors) go, one by one, to
  ``DATA_DIR/rejected.jsonl`` with the error, so nothing answered 200 disappears.

``write`` returns only once its records are stored or spooled: the caller keeps them
until then and retries on failure, and request_id makes the retry harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ray import serve

from deployments.metrics import LogWriterMetrics
from prediction_log.file_store import FileStore
from prediction_log.postgres_store import DATA_ERRORS, PostgresStore
from prediction_log.query import LogQuery
from prediction_log.records import Record, to_json_line
from prediction_log.spool import Spool
from prediction_log.stores import file_log_path
from serve_app.settings import LogWriterConfig, get_settings

logger = logging.getLogger("ray.serve")


class LogUnavailable(RuntimeError):
    """The configured store cannot be read right now."""


@serve.deployment(num_replicas=1, max_ongoing_requests=64, graceful_shutdown_timeout_s=30)
class LogWriter:
    def __init__(self) -> None:
        settings = get_settings()
        self.config = LogWriterConfig()
        self.data_dir = settings.data_dir
        self.dsn = settings.database_url
        self.spool = Spool(self.data_dir / "spool", "log-writer")
        self.rejected_path = self.data_dir / "rejected.jsonl"
        self.store: FileStore | PostgresStore | None = None
        self.counters = {"written": 0, "spooled": 0, "replayed": 0, "rejected": 0}
        self.metrics = LogWriterMetrics()
        self._in_flight = 0
        self._down_logged = False
        self._replay_lock = asyncio.Lock()
        if self.dsn is None:
            self.store = FileStore(file_log_path(settings))
            logger.info("log writer: DATABASE_URL unset, logging to %s", self.store.path)
        self._maintenance = asyncio.get_event_loop().create_task(self._maintain())

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.config = LogWriterConfig.model_validate(user_config or {})

    def _count(self, outcome: str, records: int) -> None:
        self.counters[outcome] += records
        self.metrics.count(outcome, records)

    async def write(self, records: list[Record]) -> int:
        """Store (or spool) a batch; returns how many records were accepted."""
        if not records:
            return 0
        self._in_flight += len(records)
        self.metrics.queue.set(self._in_flight)
        try:
            return await self._store_or_spool(records)
        finally:
            self._in_flight -= len(records)
            self.metrics.queue.set(self._in_flight)

    async def _store_or_spool(self, records: list[Record]) -> int:
        if self.store is not None:
            try:
                self._count("written", await self.store.insert(records))
                self._up()
                return len(records)
            except DATA_ERRORS as exc:
                await self._row_by_row(records, exc)
                return len(records)
            except Exception as exc:  # connection lost, timeout, server shutting down
                if isinstance(self.store, FileStore):
                    raise  # the caller keeps the records and retries
                self._went_down(exc)
        await self.spool.append(records)
        self._count("spooled", len(records))
        return len(records)

    async def _row_by_row(self, records: list[Record], batch_error: Exception) -> None:
        """Store what the database accepts; keep refused rows in the rejected file."""
        assert isinstance(self.store, PostgresStore)
        refused: list[str] = []
        for record in records:
            try:
                self._count("written", await self.store.insert_one(record))
            except DATA_ERRORS as exc:
                refused.append(json.dumps({"error": str(exc), "record": json.loads(to_json_line(record))}))
        if refused:
            logger.error("log writer: database refused %d of %d records (%s); kept in %s",
                         len(refused), len(records), batch_error, self.rejected_path)
            await asyncio.to_thread(self._append_rejected, refused)
            self._count("rejected", len(refused))

    def _append_rejected(self, lines: list[str]) -> None:
        with self.rejected_path.open("a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))

    def _went_down(self, exc: BaseException) -> None:
        if not self._down_logged:
            logger.error("log writer: database unavailable (%s: %s); spooling to %s",
                         type(exc).__name__, exc, self.spool.directory)
            self._down_logged = True
        store, self.store = self.store, None
        if isinstance(store, PostgresStore):
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
                    self.store = await PostgresStore.connect(self.dsn)
                if self.store is not None and self.spool.pending_files():
                    await self._replay()
                    self._up()
            except Exception as exc:
                self._went_down(exc)
            try:
                self.metrics.spool.set(await asyncio.to_thread(self.spool.record_count))
            except OSError as exc:
                logger.warning("log writer: cannot count the spool: %s", exc)
            await asyncio.sleep(self.config.retry_interval_s)

    async def _replay(self) -> None:
        async with self._replay_lock:
            await self._replay_claimed()

    async def _replay_claimed(self) -> None:
        assert self.store is not None
        for path in self.spool.claim():
            total = 0
            for chunk in self.spool.read_chunks(path, self.config.replay_chunk_records):
                try:
                    total += await self.store.replay(chunk)
                except DATA_ERRORS as exc:
                    await self._row_by_row(chunk, exc)
            path.unlink()
            self._count("replayed", total)
            logger.info("log writer: replayed %d records from %s", total, path.name)

    async def query(self, query: LogQuery) -> list[dict]:
        """Newest-first page of the log."""
        if self.store is None:
            raise LogUnavailable("prediction log database is unavailable")
        return await self.store.query(query)

    async def stats(self) -> dict[str, Any]:
        """Counters, backend and spool size (for tests, metrics and the benchmark)."""
        stored = await self.store.count() if self.store is not None else None
        return {"backend": "postgresql" if self.dsn else "file", "store_up": self.store is not None,
                "records_in_store": stored, "spool_records": await asyncio.to_thread(self.spool.record_count),
                **self.counters}

    async def flush_spool(self) -> dict[str, Any]:
        """Replay the spool now (used at shutdown and by tests)."""
        if self.store is not None and self.spool.pending_files():
            await self._replay()
        return await self.stats()

    async def __del__(self) -> None:
        self._maintenance.cancel()
        if self.store is not None:
            await self.store.close()
