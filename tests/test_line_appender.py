"""The file log's write path: an append that fails leaves nothing behind, a torn tail is cut, files are 0600."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from datetime import UTC
from pathlib import Path

import pytest

from monitoring.scenarios import SCENARIOS, applicants
from monitoring.traffic import backfill_records
from prediction_log.appender import LineAppender
from prediction_log.files.days import day_files
from prediction_log.files.jsonl import to_json_lines
from prediction_log.files.store import FileStore
from prediction_log.records import Block
from prediction_log.spool import Spool
from prediction_log.stores import FILE_LOG_NAME
from tests.support.file_log import log_lines


@pytest.fixture(scope="module")
def records() -> Block:
    return backfill_records(applicants(SCENARIOS["control"], 300, seed=3, ramp=False), days=1)


def _ids(path: Path) -> list[str]:
    import json
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def _logged_ids(data_dir: Path) -> list[str]:
    import json
    return [json.loads(line)["request_id"] for line in log_lines(data_dir)]


def _failing_after(monkeypatch: pytest.MonkeyPatch, written: int, error: int = errno.ENOSPC) -> None:
    """os.write writes ``written`` bytes of the next call, then fails like a full disk."""
    real_write = os.write
    state = {"done": False}

    def write(fd: int, data: bytes | memoryview) -> int:
        if state["done"]:
            return real_write(fd, data)
        state["done"] = True
        real_write(fd, bytes(data[:written]))
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_a_failed_append_is_cut_back_and_the_retry_is_written_once(
    tmp_path: Path, records: Block, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    store = FileStore(tmp_path / FILE_LOG_NAME)
    asyncio.run(store.insert(records.slice(0, 100)))
    _failing_after(monkeypatch, written=5000, error=error)  # 5000 bytes: some whole lines and a torn one
    with pytest.raises(OSError):
        asyncio.run(store.insert(records.slice(100, 100)))
    assert _logged_ids(tmp_path) == records.column("request_id").to_pylist()[:100]  # nothing of it left
    asyncio.run(store.insert(records.slice(100, 200)))  # the shipper's retry, then more
    assert _logged_ids(tmp_path) == records.column("request_id").to_pylist()


def test_a_torn_tail_is_cut_before_the_next_append(tmp_path: Path, records: Block) -> None:
    path = tmp_path / "outcomes.jsonl"
    data = to_json_lines(records.slice(0, 10))
    path.write_bytes(data + data[:40])  # a crash mid-append
    LineAppender(path).append(to_json_lines(records.slice(10, 5)))
    assert _ids(path) == records.column("request_id").to_pylist()[:15]


def test_files_of_personal_data_are_private(tmp_path: Path, records: Block) -> None:
    os.umask(0o022)
    data = tmp_path / "data"
    store = FileStore(data / FILE_LOG_NAME)
    asyncio.run(store.insert(records.slice(0, 5)))
    spool = Spool(data / "spool", "t")
    spool.append_sync(records.slice(5, 5))
    for path in [*(path for _, path in day_files(store.directory)), *spool.pending_files()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in [data, data / FILE_LOG_NAME, data / "spool"]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_stale_temporary_spool_files_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "t")
    stale, fresh = tmp_path / "t.1.5.tmp", tmp_path / "t.2.5.tmp"
    stale.write_text("{}\n")
    fresh.write_text("{}\n")
    os.utime(stale, (0, 0))
    spool.claim()
    assert not stale.exists() and fresh.exists()


def test_outcomes_file_with_a_torn_line_loses_no_outcome_and_still_refuses_a_conflict(
    tmp_path: Path, records: Block
) -> None:
    from datetime import datetime

    from prediction_log.files.outcomes import FileOutcomes
    from prediction_log.outcomes import Outcomes

    store = FileStore(tmp_path / FILE_LOG_NAME)
    asyncio.run(store.insert(records.slice(0, 20)))
    ids = records.column("request_id").to_pylist()[:20]
    now = datetime.now(UTC)
    path = tmp_path / "outcomes.jsonl"
    asyncio.run(FileOutcomes(path, store).record(Outcomes(ids[:5], [1] * 5, [now] * 5)))
    with path.open("ab") as f:  # an append torn by an earlier writer, after which more were written
        f.write(b'{"request_id": "torn')
    with path.open("ab") as f:
        f.write(b"\n")
    asyncio.run(FileOutcomes(path, store).record(Outcomes(ids[5:10], [0] * 5, [now] * 5)))
    reopened = FileOutcomes(path, store)
    receipt = asyncio.run(reopened.record(Outcomes([ids[7]], [1], [now])))  # after the torn line
    assert receipt.conflicting_request_ids == [ids[7]]
    again = asyncio.run(reopened.record(Outcomes(ids[:10], [1] * 5 + [0] * 5, [now] * 10)))
    assert again.duplicates == 10 and again.accepted == 0
