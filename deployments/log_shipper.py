"""Ingress-side buffer that hands decisions to the log writer in batches.

Requests only append to an in-memory list; a background task ships it every
``log_flush_interval_s`` (or sooner when ``log_flush_max_records`` are waiting), at most
``log_flush_max_records`` per remote call (a message must stay under gRPC's 4 MB).
Records leave the buffer only when the writer acknowledges them; on failure they are
retried, and moved to the local spool once ``spill_records`` are held. On shutdown
whatever the writer cannot take is spooled; the writer replays the spool.
"""

from __future__ import annotations

import asyncio
import logging

from ray.serve.handle import DeploymentHandle
from ray.serve.metrics import Gauge

from prediction_log.records import Record
from prediction_log.spool import Spool

logger = logging.getLogger("ray.serve")


class LogShipper:
    def __init__(self, writer: DeploymentHandle, spool: Spool, interval_s: float, max_records: int,
                 spill_records: int = 100_000, buffer_gauge: Gauge | None = None) -> None:
        self.writer = writer
        self.spool = spool
        self.interval_s = interval_s
        self.max_records = max_records
        self.spill_records = spill_records
        self.buffer_gauge = buffer_gauge
        """Set to the buffer's size once per flush cycle."""
        self.buffer: list[Record] = []
        self.shipped = 0
        self._wake = asyncio.Event()
        self._failing = False
        self._task = asyncio.get_event_loop().create_task(self._run())

    def add(self, records: list[Record]) -> None:
        """Queue decisions (never blocks, never awaits)."""
        self.buffer.extend(records)
        if len(self.buffer) >= self.max_records:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self.buffer_gauge is not None:
                self.buffer_gauge.set(len(self.buffer))
            while self.buffer and await self._ship():
                pass
            if self._failing and len(self.buffer) >= self.spill_records:
                await self._spill()

    async def _ship(self) -> bool:
        """Send up to ``max_records`` in one call; on any failure (or cancellation) put them back."""
        batch = self.buffer[:self.max_records]
        del self.buffer[:len(batch)]
        shipped = False
        try:
            await self.writer.write.remote(batch)
            shipped = True
        except Exception as exc:  # writer restarting or unreachable: keep and retry
            if not self._failing:
                logger.error("log shipper: log writer unavailable (%s); holding records", exc)
                self._failing = True
        finally:
            if not shipped:
                self.buffer[:0] = batch
        if not shipped:
            await asyncio.sleep(min(1.0, self.interval_s * 10))
            return False
        self.shipped += len(batch)
        if self._failing:
            logger.warning("log shipper: log writer reachable again")
            self._failing = False
        return True

    async def _spill(self) -> None:
        """Writer unreachable for long: move the buffer to the local spool (the writer replays it)."""
        batch, self.buffer = self.buffer, []
        try:
            await self.spool.append(batch)
        except BaseException:
            self.buffer[:0] = batch
            raise
        logger.warning("log shipper: spooled %d records while the log writer is unreachable", len(batch))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Ship what is buffered; spool anything the writer could not take in time."""
        self._task.cancel()
        deadline = asyncio.get_event_loop().time() + timeout_s
        while self.buffer and asyncio.get_event_loop().time() < deadline:
            try:
                if await asyncio.wait_for(self._ship(), max(0.1, deadline - asyncio.get_event_loop().time())):
                    continue
            except asyncio.TimeoutError:
                pass
        if self.buffer:
            await self.spool.append(self.buffer)
            logger.warning("log shipper: spooled %d records at shutdown", len(self.buffer))
            self.buffer = []
