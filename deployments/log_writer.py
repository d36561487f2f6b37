"""Log-writer deployment: hosts the prediction log (``deployments.log_service.PredictionLog``) on one replica.

* ``DATABASE_URL`` unset → the JSONL file log in ``DATA_DIR`` (the embedded default).
* ``DATABASE_URL`` set → PostgreSQL (binary COPY, idempotent on request_id). While the database
  is unreachable, failing or hanging (every statement has a timeout), blocks go to a local spool
  (fsync'd, with a quota) and are replayed when it is back. Rows the database refuses (data
  errors) go, one by one, to ``DATA_DIR/rejected.jsonl`` with the error, so nothing answered 200
  disappears.

``write`` returns only once its records are stored or spooled; otherwise it raises and the
caller (the ingress's log shipper) keeps the block, and request_id makes the retry harmless. What this
deployment adds to the log is only what a deployment adds: the maintenance and monitoring loops, metrics, its
configuration, the node it runs on, and ``read`` for the ingress to forward the API's reads by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import ray
from ray import serve

from core.settings import LogWriterConfig, get_settings
from deployments.log_service import PredictionLog
from deployments.loopback import bind_replica_servers_to_loopback
from deployments.metrics import LogWriterMetrics
from deployments.reconfigure import validated_or_kept
from prediction_log.model_changes import ModelChange
from prediction_log.records import Block

logger = logging.getLogger("ray.serve")


@serve.deployment
class LogWriter:
    def __init__(self) -> None:
        bind_replica_servers_to_loopback()
        self._configured = False
        self.log = PredictionLog(get_settings(), LogWriterConfig(), LogWriterMetrics())
        self._maintenance = asyncio.get_event_loop().create_task(self._maintain())
        self._monitor_now = asyncio.Event()
        self._monitoring = asyncio.get_event_loop().create_task(self._monitor())

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply an edited user_config; an invalid one is refused (logged) and the one in force stays."""
        config = validated_or_kept(LogWriterConfig, user_config, self.log.config if self._configured else None,
                                   "log writer")
        if config is None:
            return
        if config.monitoring_interval_s != self.log.config.monitoring_interval_s:
            self._monitor_now.set()   # a shortened interval applies now, not after the old one
        self._configured = True
        self.log.apply(config)

    async def write(self, block: Block) -> int:
        """Store (or spool) a block; returns how many records were accepted."""
        return await self.log.write(block)

    async def replay(self, block: Block) -> int:
        """Spooled records from another node's spool (``deployments.node_spool``)."""
        return await self.log.replay(block)

    async def record_model_changes(self, changes: list[ModelChange]) -> None:
        """Scorer replicas' audit entries."""
        await self.log.record_model_changes(changes)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A call of the log the ingress forwards (``PredictionLog.call``: ``@api_call`` methods only)."""
        return await self.log.call(name, *args, **kwargs)

    async def node_id(self) -> str:
        """The Ray node this writer runs on (an ingress elsewhere replays its node's spool through ``replay``)."""
        return ray.get_runtime_context().get_node_id()

    async def _maintain(self) -> None:
        """Connect when needed, and replay the spool whenever the store is up."""
        while True:
            await self.log.maintain_once()
            await asyncio.sleep(self.log.config.retry_interval_s)

    async def _monitor(self) -> None:
        """A monitoring run every ``monitoring_interval_s``, the first at start: stored beside the log, published
        as gauges; a failed run is logged and retried at the next interval."""
        while True:
            try:
                if self.log.store is not None:
                    await self.log.monitor_once()
            except Exception as exc:
                logger.warning("log writer: monitoring run failed (%s: %s)", type(exc).__name__, exc)
            self._monitor_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._monitor_now.wait(), self.log.config.monitoring_interval_s)

    async def __del__(self) -> None:
        self._maintenance.cancel()
        self._monitoring.cancel()
        await self.log.close()
