"""Ingress-side buffer that hands decision blocks to the log writer, with bounded memory and bounded loss.

Requests only append a block to an in-memory list; a background task ships it every
``interval_s`` (or sooner once ``max_records`` wait), at most ``max_records`` per remote call (a
message must stay under gRPC's limits). Records leave the buffer only when the writer acknowledges
them. A call that fails **or takes longer than** ``write_timeout_s`` counts as failed; while the writer is
failing, the buffer is spilled to the local spool (fsync'd; the writer replays it) once it holds
``max_buffer_records`` or ``max_buffer_bytes`` (explained decisions carry their reason codes) or
``max_buffer_age_s`` after the failure or the last spill, whichever comes first. If the spool cannot take them
either (quota, full disk), ``accepting`` turns false and the ingress answers 503 instead of deciding what it
cannot record. While writes succeed, none of these bounds applies: the buffer is the normal batching.

Answered but not yet durable (what a SIGKILL of the replica, or a stop with the disk still full, loses): at most
``max_buffer_records`` plus the decisions of one ``write_timeout_s`` (the call in flight), or one flush interval of
traffic while the writer is healthy. ``close`` stops the task, waits for it, ships what it can and spools the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from core.settings import IngressConfig
from prediction_log.records import Block, compact, concat
from prediction_log.spool import Spool

logger = logging.getLogger("ray.serve")


class LogShipper:
    def __init__(self, writer: Any, spool: Spool, config: IngressConfig, buffer_gauge: Any | None = None) -> None:
        self.writer = writer
        """A handle (or stand-in) with ``write.remote(block)``."""
        self.spool = spool
        self.apply(config)
        self.buffer_gauge = buffer_gauge
        self.buffer: list[Block] = []
        self.buffered = 0
        """Records in ``buffer``; ``held`` adds the block being shipped or spooled right now."""
        self.buffered_bytes = 0
        """Arrow bytes of ``buffer`` (recounted per take: the buffer is a handful of blocks)."""
        self._moving = 0
        self.shipped = 0
        self.spilled = 0
        self.failing = False
        self._spilled_at = 0.0
        """When the writer began failing or the buffer was last spilled (``time.monotonic``)."""
        self._spill_due = False
        """A block was turned away for want of room: spill now rather than at the bound."""
        self._spool_takes = True
        """False once a spill failed (quota, full disk), until a spill or a call succeeds."""
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.get_event_loop().create_task(self._run())

    def apply(self, config: IngressConfig) -> None:
        """The bounds of ``config`` (the ingress's user_config: one statement of each default)."""
        self.interval_s = config.log_flush_interval_s
        self.max_records = config.log_flush_max_records
        self.max_call_bytes = config.log_flush_max_bytes
        self.write_timeout_s = config.log_write_timeout_s
        self.max_buffer_records = config.log_buffer_max_records
        self.max_buffer_bytes = config.log_buffer_max_bytes
        self.max_buffer_age_s = config.log_buffer_max_age_s
        self.spool.quota_bytes = config.spool_quota_bytes

    @property
    def accepting(self) -> bool:
        """Whether the ingress may admit scoring requests (``accepts`` decides for each block of decisions)."""
        return self.accepts(0)

    def accepts(self, records: int) -> bool:
        """Whether ``records`` more decisions may be answered: not while the writer fails and the spool refuses,
        nor beyond ``max_buffer_records`` in memory while a failing writer leaves them there (a spill is then due
        at once)."""
        if not self._spool_takes:
            return False
        if self.failing and self.held + records > self.max_buffer_records and self.held:
            self._spill_due = True
            self._wake.set()
            return False
        return True

    @property
    def spool_refuses(self) -> bool:
        """The last spill failed (quota, full disk)."""
        return not self._spool_takes

    @property
    def held(self) -> int:
        """Every record this replica holds in memory (what a SIGKILL now would lose)."""
        return self.buffered + self._moving

    @property
    def state(self) -> str:
        """``ok``, ``writer_unavailable`` (holding or spooling) or ``refusing`` (nowhere to record)."""
        return "refusing" if not self.accepting else "writer_unavailable" if self.failing else "ok"

    def add(self, block: Block) -> None:
        """Queue decisions (never blocks, never awaits)."""
        self.buffer.append(block)
        self.buffered += len(block)
        self.buffered_bytes += block.nbytes
        if self.buffered >= self.max_records or (self.failing and self._over_bound()):
            self._wake.set()

    def _over_bound(self) -> bool:
        """What a failing writer leaves in memory has reached a bound: time to spill."""
        return (
            self._spill_due
            or self.buffered >= self.max_buffer_records
            or self.buffered_bytes >= self.max_buffer_bytes
            or time.monotonic() - self._spilled_at >= self.max_buffer_age_s
        )

    def _take(self, limit: int, max_bytes: int | None = None) -> Block:
        """Remove up to ``limit`` records (and about ``max_bytes``) from the head of the buffer as one block.

        A part of a larger block is copied into buffers of its own: a slice pickles its parent's whole buffers
        (a 2,000-row part of a 10,000-row block with reasons was a 4.8 MB message, over gRPC's 4 MiB limit)."""
        taken: list[Block] = []
        count = size = 0
        while self.buffer and count < limit and (max_bytes is None or size < max_bytes or not taken):
            head = self.buffer[0]
            room = limit - count
            if max_bytes is not None and len(head):
                room = min(room, max(1, int((max_bytes - size) / (head.nbytes / len(head)))))
            if len(head) <= room:
                taken.append(self.buffer.pop(0))
                count += len(head)
                size += head.nbytes
            else:  # both parts copied into buffers of their own
                part = compact(head.slice(0, room))
                taken.append(part)
                self.buffer[0] = compact(head.slice(room))
                count += room
                size += part.nbytes
        self.buffered -= count
        self.buffered_bytes = sum(b.nbytes for b in self.buffer)
        self._moving = count
        return concat(taken)

    def _put_back(self, block: Block) -> None:
        self.buffer.insert(0, block)
        self.buffered += len(block)
        self.buffered_bytes += block.nbytes
        self._moving = 0

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self._cycle()
            except Exception:  # never let the shipping task die: that replica would stop logging
                logger.exception("log shipper: unexpected error; retrying")
                await asyncio.sleep(self.interval_s)

    async def _cycle(self) -> None:
        if self.buffer_gauge is not None:
            self.buffer_gauge.set(self.held)
        while self.buffer and not self._closing:
            if self.failing and self._over_bound() and await self._spill():
                continue
            if not await self._ship():  # a failed spill is retried after the ship's back-off, not at once
                break

    async def _ship(self) -> bool:
        """Send up to ``max_records`` in one call; on failure, timeout or cancellation put them back."""
        block = self._take(self.max_records, self.max_call_bytes)
        shipped = False
        try:
            await asyncio.wait_for(self.writer.write.remote(block), self.write_timeout_s)
            shipped = True
        except Exception as exc:  # writer restarting, unreachable or hung: keep and retry
            if not self.failing:
                logger.error("log shipper: log writer unavailable (%s: %s); holding records", type(exc).__name__, exc)
                self.failing = True
                self._spilled_at = time.monotonic()
        finally:
            if not shipped:
                self._put_back(block)
        if not shipped:
            if not (self._spool_takes and self._over_bound()):  # back off, unless a spill is due now
                self._wake.clear()  # (woken at once when the buffer reaches its bound)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(self.max_buffer_age_s / 2, self.interval_s * 10))
            return False
        self._moving = 0
        self.shipped += len(block)
        if self.failing:
            logger.warning("log shipper: log writer reachable again")
            self.failing = False
            self._spool_takes = True
        return True

    async def _spill(self) -> bool:
        """Move the whole buffer to the local spool; on a full spool stop accepting decisions."""
        block = self._take(self.buffered)
        try:
            await self.spool.append(block)
        except OSError as exc:
            self._put_back(block)
            if self._spool_takes:
                logger.error(
                    "log shipper: cannot spool (%s); refusing new decisions until the log writer "
                    "or the spool can take them",
                    exc,
                )
            self._spool_takes = False
            return False
        self._moving = 0
        self._spill_due = False
        self._spilled_at = time.monotonic()
        self.spilled += len(block)
        self._spool_takes = True
        logger.warning("log shipper: spooled %d records while the log writer is unavailable", len(block))
        return True

    async def close(self, timeout_s: float = 8.0) -> None:
        """Stop the task (and wait for it), ship what is buffered, spool what the writer cannot take in time."""
        self._closing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout_s / 2)
        deadline = asyncio.get_event_loop().time() + timeout_s / 2
        self.write_timeout_s = min(self.write_timeout_s, timeout_s / 4)
        while self.buffer and asyncio.get_event_loop().time() < deadline:
            if not await self._ship():
                break
        if self.buffer:
            count = self.buffered
            if await self._spill():
                logger.warning("log shipper: spooled %d records at shutdown", count)
            else:
                logger.error("log shipper: %d records could be neither shipped nor spooled at shutdown", count)
