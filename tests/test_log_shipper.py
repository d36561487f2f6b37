"""LogShipper against a stand-in writer: bounded calls, bounded memory, nothing dropped when the writer
fails or hangs, 503 (not accepting) only when the spool cannot take the records either."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from core.settings import IngressConfig
from deployments.decisions import decision_block
from deployments.log_shipper import LogShipper
from prediction_log.records import Block, concat, request_ids
from prediction_log.spool import Spool


async def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` on the event loop; the deadline is generous (a loaded CI VM), not a speed target."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def bounds(**settings: float) -> IngressConfig:
    """The ingress's defaults with test-sized bounds (below the settings' minimums where a test needs it)."""
    return IngressConfig.model_construct(**(IngressConfig().model_dump() | settings))


class _Method:
    def __init__(self) -> None:
        self.calls: list[Block] = []
        self.up = True
        self.hang = False

    async def remote(self, block: Block) -> int:
        await asyncio.sleep(0)
        if self.hang:
            await asyncio.sleep(3600)
        if not self.up:
            raise ConnectionError("writer away")
        self.calls.append(block)
        return len(block)


class _Writer:
    def __init__(self) -> None:
        self.write = _Method()


def _records(n: int) -> Block:
    rows = np.tile(np.array([[0.5, 0.05, 0.5, 0.9, 1e5, 2e4, 6.0, -15000, 1.5, 0.5]]), (n, 1))
    return decision_block(rows, np.linspace(0, 1, n), "v1", 0.1, 1.0, "test")


def spooled_ids(spool: Spool) -> list[str]:
    """request_ids of the sealed (and claimed) spool files, in file order."""
    return [i for path in spool.pending_files() for chunk in Spool.read_chunks(path, 1000) for i in request_ids(chunk)]


def test_calls_are_bounded_and_ordered(tmp_path: Path) -> None:
    async def scenario() -> _Writer:
        writer = _Writer()
        shipper = LogShipper(writer, Spool(tmp_path, "ingress"),
                             bounds(log_flush_interval_s=0.01, log_flush_max_records=1000))
        for start in range(0, 25_000, 5_000):
            shipper.add(records.slice(start, 5_000))
        await shipper.close()
        return writer

    records = _records(25_000)
    writer = asyncio.run(scenario())
    assert max(len(c) for c in writer.write.calls) <= 1000
    assert request_ids(concat(writer.write.calls)) == request_ids(records)


def test_unreachable_writer_spills_to_spool_then_resumes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress")

    async def scenario() -> _Writer:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, bounds(log_flush_interval_s=0.01, log_flush_max_records=100,
                                                   log_buffer_max_records=500))
        shipper.add(records.slice(0, 600))
        await eventually(lambda: shipper.held < 500, "the buffer spilled to the spool")
        assert shipper.accepting
        writer.write.up = True
        shipper.add(records.slice(600))
        await eventually(lambda: shipper.held == 0, "the rest shipped")
        await shipper.close()
        return writer

    records = _records(650)
    writer = asyncio.run(scenario())
    delivered = request_ids(concat(writer.write.calls))
    spooled = spooled_ids(spool)
    assert len(spooled) >= 500
    assert sorted(delivered + spooled) == sorted(request_ids(records))


def test_a_hung_writer_is_timed_out_and_memory_stays_bounded(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress")

    async def scenario() -> tuple[int, int]:
        writer = _Writer()
        writer.write.hang = True
        shipper = LogShipper(writer, spool, bounds(log_flush_interval_s=0.01, log_flush_max_records=100,
                                                   log_write_timeout_s=0.05, log_buffer_max_records=300))
        peak = 0
        for start in range(0, 3000, 50):   # steady traffic while the writer never answers
            shipper.add(records.slice(start, 50))
            peak = max(peak, shipper.held)
            await asyncio.sleep(0.01)
        await shipper.close(timeout_s=0.4)
        return peak, shipper.buffered

    records = _records(3000)
    peak, left = asyncio.run(scenario())
    assert peak <= 300 + 100 + 6 * 50   # the bound + the call in flight + what arrives during its 50 ms timeout
    assert left == 0
    assert sorted(spooled_ids(spool)) == sorted(request_ids(records))


def test_full_spool_refuses_decisions_until_the_writer_is_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress", quota_bytes=1 << 20)

    async def scenario() -> None:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, bounds(log_flush_interval_s=0.01, log_flush_max_records=500,
                                                   log_buffer_max_records=2000, spool_quota_bytes=spool.quota_bytes))
        shipper.add(_records(6000))          # ~3.6 MB of JSON lines: more than the quota
        await eventually(lambda: shipper.spool_refuses, "the spool to refuse")
        assert not shipper.accepting
        assert shipper.state == "refusing"
        assert shipper.held == 6000          # kept in memory, not dropped
        writer.write.up = True
        await eventually(lambda: shipper.accepting and shipper.buffered == 0, "the shipper to recover")
        await shipper.close()

    asyncio.run(scenario())


def test_close_spools_what_the_writer_cannot_take(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "ingress")

    async def scenario() -> None:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, bounds(log_flush_interval_s=0.01, log_flush_max_records=100))
        shipper.add(_records(42))
        await shipper.close(timeout_s=0.2)

    asyncio.run(scenario())
    assert spool.record_count() == 42


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs): the disk fills up, no quota involved."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_refuses_decisions_loses_none_and_recovers(tiny_disk: Path) -> None:
    spool = Spool(tiny_disk / "spool", "ingress")   # no quota: the filesystem itself runs out (ENOSPC)

    async def scenario() -> None:
        writer = _Writer()
        writer.write.up = False
        shipper = LogShipper(writer, spool, bounds(log_flush_interval_s=0.01, log_flush_max_records=500,
                                                   log_buffer_max_records=2000, spool_quota_bytes=spool.quota_bytes))
        records = _records(6000)             # ~3.6 MB of JSON lines on a 1 MiB disk
        shipper.add(records)
        await eventually(lambda: shipper.spool_refuses, "the spool to refuse on the full disk")
        assert not shipper.accepting
        assert shipper.state == "refusing"
        assert not list(spool.directory.glob("*.tmp")), "a failed spool write must not leave a torn file"
        spooled = spooled_ids(spool)        # complete files only, every line parses
        assert len(spooled) + shipper.held == 6000
        writer.write.up = True               # the writer is back: memory first, then the spool replays elsewhere
        await eventually(lambda: shipper.accepting and shipper.buffered == 0, "the shipper to recover")
        written = [i for block in writer.write.calls for i in request_ids(block)]
        assert sorted(written + spooled) == sorted(request_ids(records)), "every decision written or spooled once"
        await shipper.close()

    asyncio.run(scenario())


def test_the_buffer_is_bounded_in_bytes_too(tmp_path: Path) -> None:
    """Explained decisions carry their reason codes: far fewer records than the record bound fill the byte bound."""
    spool = Spool(tmp_path, "ingress")
    rows = np.tile(np.array([[0.5, 0.05, 0.5, 0.9, 1e5, 2e4, 6.0, -15000, 1.5, 0.5]]), (50, 1))
    reasons = [{"reasons": [{"feature": f"f{i}", "text": "x" * 400} for i in range(8)]}] * 50
    blocks = [decision_block(rows, np.linspace(0, 1, 50), "v1", 0.1, 1.0, "test", reasons) for _ in range(40)]
    per_block = blocks[0].nbytes

    async def scenario() -> int:
        writer = _Writer()
        writer.write.up = False
        limits = bounds(log_flush_interval_s=0.01, log_flush_max_records=100_000, log_buffer_max_records=1_000_000,
                        log_buffer_max_bytes=5 * per_block)
        shipper = LogShipper(writer, spool, limits)
        peak = 0
        for block in blocks:
            shipper.add(block)
            peak = max(peak, shipper.buffered_bytes)
            await asyncio.sleep(0.02)
        await shipper.close(timeout_s=0.2)
        return peak

    peak = asyncio.run(scenario())
    assert peak <= 5 * per_block + 2 * per_block  # the bound + what arrives before the spill runs
    assert sorted(spooled_ids(spool)) == sorted(i for b in blocks for i in request_ids(b))


def test_a_large_block_is_shipped_in_compact_calls_under_the_message_limit(tmp_path: Path) -> None:
    """A 10,000-row batch with reasons once went out as 2,000-row slices that each pickled the whole block."""
    import pickle

    spool = Spool(tmp_path, "ingress")
    records = _records(10_000)

    async def scenario() -> _Writer:
        writer = _Writer()
        shipper = LogShipper(
            writer,
            spool,
            bounds(log_flush_interval_s=0.01, log_flush_max_records=2000, log_flush_max_bytes=records.nbytes // 8),
        )
        shipper.add(records)
        await eventually(lambda: shipper.held == 0, "everything shipped")
        await shipper.close()
        return writer

    writer = asyncio.run(scenario())
    sizes = [len(pickle.dumps(block)) for block in writer.write.calls]
    assert max(sizes) < records.nbytes / 4, sizes
    assert [i for block in writer.write.calls for i in request_ids(block)] == request_ids(records)


def test_a_log_that_cannot_persist_refuses_within_the_window(tmp_path: Path) -> None:
    """The answered-but-not-durable window at the defaults: once writes fail (a full disk) and the spool cannot take
    the records either, the ingress stops accepting within ``log_buffer_max_records`` decisions or
    ``log_buffer_max_age_s``, whichever comes first; with space back, nothing was lost."""
    config = IngressConfig()
    spool = Spool(tmp_path, "ingress", quota_bytes=1)  # takes nothing, as on a disk that stays full

    async def scenario(rows_per_block: int, pause_s: float) -> tuple[int, float, list[str], Block]:
        writer = _Writer()
        shipper = LogShipper(writer, spool, bounds(spool_quota_bytes=1))
        records = _records(40_000)
        start = 0
        while start < len(records) and shipper.accepts(rows_per_block):  # as the ingress records a block
            if start == 4 * rows_per_block:
                writer.write.up = False  # the store stops persisting here
                failed_at = asyncio.get_running_loop().time()
            shipper.add(records.slice(start, rows_per_block))
            start += rows_per_block
            await asyncio.sleep(pause_s)
        refused_after = asyncio.get_running_loop().time() - failed_at
        undurable = shipper.held
        writer.write.up = True
        await eventually(lambda: shipper.held == 0, "the held records shipped once the store is back")
        await shipper.close()
        return (
            undurable,
            refused_after,
            [i for b in writer.write.calls for i in request_ids(b)],
            records.slice(0, start),
        )

    for rows_per_block, pause_s in ((500, 0.005), (10, 0.05)):  # a fast stream: the count bounds; a slow one: time
        undurable, refused_after, written, answered = asyncio.run(scenario(rows_per_block, pause_s))
        assert undurable <= config.log_buffer_max_records
        assert refused_after <= config.log_write_timeout_s + config.log_buffer_max_age_s + 0.5, refused_after
        assert sorted(written) == sorted(request_ids(answered)), "every answered decision written once"
