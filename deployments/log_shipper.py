"""Ingress-side buffer that hands decisions to the log writer in batches.

Requests only append to an in-memory list; a background task ships the list every
``log_flush_interval_s`` (or sooner when ``log_flush_max_records`` are waiting) with one
remote call. Records leave the buffer only when the writer acknowledges them; on
failure they are retried. On shutdown whatever the writer cannot take is spooled to
local disk, where the writer replays it.
"""

from __future__ import annotations

import asyncio
import logging

from ray.serve.handle import DeploymentHandle

from prediction_log.records import Record
from prediction_log.spool import Spool

logger = logging.getLogger("ray.serve")


class LogShipper:
    def __init__(self, writer: DeploymentHandle, spool: Spool, interval_s: float, max_records: int) -> None:
        self.writer = writer
        self.spool = spool
        self.interval_s = interval_s
        self.max_records = max_records
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
            if self.buffer:
                await self._ship()

    async def _ship(self) -> bool:
        """Send the buffer in one call; on any failure (or cancellation) put it back."""
        batch, self.buffer = self.buffer, []
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
