"""Replays an ingress node's spool through the log writer when the writer runs on another node.

An ingress spills to the spool on its own node's disk (``DATA_DIR/spool``). The log writer replays the spool
folder of the node it runs on; on a cluster, ingresses on other nodes would leave theirs there for ever. So
each ingress asks the writer which node it is on and, when that is not its own, claims every sealed file in
its node's spool (its own and those of replicas killed on that node) and sends the records to the writer's
``replay`` (stored once by request_id), deleting a file only once all of it is stored. Two ingresses on one
node claim by rename, so each file is replayed by one of them (and a second replay would be skipped by id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prediction_log.spool import Spool

logger = logging.getLogger("ray.serve")


class NodeSpoolReplay:
    """``writer``: a handle with ``node_id.remote()`` and ``replay.remote(block)``; ``own_node()``: this node's id."""

    def __init__(self, writer: Any, spool: Spool, own_node: Callable[[], str], chunk_records: int = 5000,
                 timeout_s: float = 60.0) -> None:
        self.writer, self.spool, self.own_node = writer, spool, own_node
        self.chunk_records, self.timeout_s = chunk_records, timeout_s
        self.replayed = 0
        self._elsewhere: bool | None = None

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await asyncio.wait_for(method(*args), self.timeout_s)

    async def writer_elsewhere(self) -> bool:
        """Whether the writer runs on another node (asked once; the writer is pinned to the head node)."""
        if self._elsewhere is None:
            self._elsewhere = await self._call(self.writer.node_id.remote) != self.own_node()
        return self._elsewhere

    async def replay_once(self) -> int:
        """Replay what this node's spool holds; a failure leaves the files (claimed) for the next pass."""
        if not self.spool.pending_files() or not await self.writer_elsewhere():
            return 0
        total = 0
        for path in await asyncio.to_thread(self.spool.claim):
            try:
                for chunk in self.spool.read_chunks(path, self.chunk_records):
                    total += await self._call(self.writer.replay.remote, chunk)
            except FileNotFoundError:   # another ingress of this node replayed it meanwhile
                continue
            path.unlink(missing_ok=True)
            logger.info("node spool: replayed %s through the log writer", path.name)
        self.replayed += total
        return total

    async def run(self, interval_s: float) -> None:
        """Every ``interval_s``, replay what is there (quietly retried while the writer is away)."""
        while True:
            try:
                await self.replay_once()
            except Exception as exc:
                logger.warning("node spool: replay failed (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(interval_s)
