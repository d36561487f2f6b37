"""An ingress on a node without the log writer replays its node's spool through the writer, each record once,
keeping the files while the writer is away; on the writer's node it leaves the spool to the writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deployments.node_spool import NodeSpoolReplay
from prediction_log.records import Block, request_ids
from prediction_log.spool import Spool
from tests.test_log_shipper import _records


class _Writer:
    """The log writer's ``node_id`` and ``replay`` (stored once by request_id), on ``node``."""

    def __init__(self, node: str) -> None:
        self.node, self.up, self.stored = node, True, set[str]()
        outer = self

        class NodeId:
            async def remote(self) -> str:
                return outer.node

        class Replay:
            async def remote(self, block: Block) -> int:
                if not outer.up:
                    raise ConnectionError("writer away")
                fresh = set(request_ids(block)) - outer.stored
                outer.stored |= fresh
                return len(fresh)

        self.node_id, self.replay = NodeId(), Replay()


def _spool_with_records(tmp_path: Path) -> tuple[Spool, list[str]]:
    """This replica's spool file and one a replica killed on the same node left."""
    own, killed = Spool(tmp_path, "ingress-a"), Spool(tmp_path, "ingress-dead")
    first, second = _records(300), _records(120)
    own.append_sync(first)
    killed.append_sync(second)
    return own, request_ids(first) + request_ids(second)


def test_a_worker_node_spool_reaches_the_writer_once(tmp_path: Path) -> None:
    spool, expected = _spool_with_records(tmp_path)
    writer = _Writer("head")
    replay = NodeSpoolReplay(writer, spool, lambda: "worker", chunk_records=100)
    writer.up = False
    with pytest.raises(ConnectionError):
        asyncio.run(replay.replay_once())
    assert spool.record_count() == len(expected)   # kept (claimed) for the next pass
    writer.up = True
    assert asyncio.run(replay.replay_once()) == len(expected)
    assert writer.stored == set(expected) and spool.pending_files() == []
    assert asyncio.run(replay.replay_once()) == 0


def test_on_the_writers_node_the_spool_is_left_to_the_writer(tmp_path: Path) -> None:
    spool, expected = _spool_with_records(tmp_path)
    writer = _Writer("head")
    assert asyncio.run(NodeSpoolReplay(writer, spool, lambda: "head").replay_once()) == 0
    assert writer.stored == set() and spool.record_count() == len(expected)
