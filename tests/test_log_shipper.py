"""LogShipper against a stand-in writer handle: bounded calls, nothing dropped when the writer is away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from deployments.decisions import decide
from deployments.log_shipper import LogShipper
from prediction_log.spool import Spool


class _Method:
    def __init__(self) -> None:
        self.calls: list[list[tuple]] = []
        self.up = True

    async def remote(self, batch: list[tuple]) -> int:
        await asyncio.sleep(0)
        if not self.up:
            raise ConnectionError("writer away")
        self.calls.append(list(batch))
        return len(batch)


class _Writer:
    def __init__(self) -> None:
        self.write = _Method()


def _records(n: int) -> list[tuple]:
    return decide(np.full((n, 10), -1.0), np.linspace(0, 1, n), "v1", 0.1, 1.0, "test").records


def test_calls_are_bounded_and_ordered(tmp_path: Path) -> None:
    async def scenario() -> _Writer:
        writer = _Writer()
        shipper = LogShipper(writer, Spool(tmp_path, "ingress"), interval_s=0.01, max_records=1000)  # type: ignore[arg-type]
        for start in range(0, 25_000, 5_000):
            shipper.add(records[start:start + 5_000])
        await shipper.close()
        return writer

    records = _records(25_000)
    writer = asyncio.run(scenario())
    assert max(len(c) for c in writer.write.calls) <= 1000
    assert [r for c in writer.write.calls for r in c] == records


def test_unreachable_writer_spills_to_spool_then_resumes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress")

    async def scenario() -> _Writer:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, interval_s=0.01, max_records=100, spill_records=500)  # type: ignore[arg-type]
        shipper.add(records[:600])
        await asyncio.sleep(0.5)
        writer.write.up = True
        shipper.add(records[600:])
        await asyncio.sleep(0.3)
        await shipper.close()
        return writer

    records = _records(650)
    writer = asyncio.run(scenario())
    delivered = [r[0] for c in writer.write.calls for r in c]
    spooled = [r[0] for path in spool.pending_files() for chunk in Spool.read_chunks(path, 1000) for r in chunk]
    assert len(spooled) >= 500
    assert sorted(delivered + spooled) == sorted(r[0] for r in records)


def test_close_spools_what_the_writer_cannot_take(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress")

    async def scenario() -> None:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, interval_s=0.01, max_records=100)  # type: ignore[arg-type]
        shipper.add(_records(42))
        await shipper.close(timeout_s=0.2)

    asyncio.run(scenario())
    assert spool.record_count() == 42
