"""Retention of the file log (``python -m prediction_log.retention`` without a database): with 7 days kept, the day
files wholly older are archived to Parquet (private) and removed, nothing younger is touched, a second run finds
nothing, a replay into an expired day expires with the next run, and an append racing a run is never lost."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core.settings import PROJECT_ROOT
from prediction_log.appender import LineAppender
from prediction_log.files.days import ONE_DAY, day_files, day_path, day_start
from prediction_log.files.jsonl import to_json_lines
from prediction_log.files.retention import expire_days
from prediction_log.files.store import FileStore
from prediction_log.records import request_ids
from prediction_log.retention import cutoff_for
from prediction_log.stores import FILE_LOG_NAME
from tests.test_aggregates import spread_block
from tests.test_file_days import at

NOW = datetime.now(UTC)


def _retention(data_dir: Path, *args: str) -> dict:
    env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "prediction_log.retention", "--keep-days", "7", *args],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _archived_ids(archive: Path) -> list[str]:
    return [
        i
        for path in sorted(archive.glob("predictions-*.parquet"))
        for i in pq.read_table(path)["request_id"].to_pylist()
    ]


@pytest.mark.slow  # two runs of the command in processes of their own: seconds the everyday loop can spare
def test_the_documented_command_archives_and_removes_whole_days_older_than_kept(tmp_path: Path) -> None:
    folder = tmp_path / FILE_LOG_NAME
    store = FileStore(folder)
    records = at(spread_block(120, 7), NOW - timedelta(days=10), timedelta(hours=2))  # the last 10 days
    asyncio.run(store.insert(records))
    cutoff = cutoff_for(7, NOW)
    expired = [
        i
        for i, ts in zip(request_ids(records), records.column("ts").to_pylist())
        if day_start(ts.date()) + ONE_DAY <= cutoff
    ]
    kept_files = {path.name: path.read_bytes() for day, path in day_files(folder) if day_start(day) + ONE_DAY > cutoff}

    dry = _retention(tmp_path, "--dry-run")
    assert (dry["expired"], dry["archived"], len(day_files(folder))) == (len(expired), 0, 11)
    report = _retention(tmp_path)
    assert report["archived"] == len(expired) and len(expired) >= 24  # at least two whole days
    archive = tmp_path / "archive"
    assert _archived_ids(archive) == expired
    assert {path.name: path.read_bytes() for _, path in day_files(folder)} == kept_files  # younger: untouched
    for path in archive.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (_retention(tmp_path)["expired"], asyncio.run(FileStore(folder).count())) == (0, len(records) - len(expired))

    late = at(spread_block(5, 8), NOW - timedelta(days=9), timedelta(minutes=1))  # an old spool replayed late
    assert asyncio.run(FileStore(folder).insert(late)) == 5
    assert _retention(tmp_path)["archived"] == 5
    assert sorted(_archived_ids(archive)) == sorted(expired + request_ids(late))


def test_an_append_racing_a_run_is_archived_or_kept_never_lost(tmp_path: Path) -> None:
    folder = tmp_path / FILE_LOG_NAME
    old = at(spread_block(10, 9), NOW - timedelta(days=20), timedelta(minutes=1))
    asyncio.run(FileStore(folder).insert(old))
    path = day_path(folder, old.column("ts")[0].as_py().date())
    under_way = os.open(path, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(under_way, fcntl.LOCK_EX)  # an append that opened the file before the run renamed it
    report: dict = {}
    run = threading.Thread(target=lambda: report.update(expire_days(folder, cutoff_for(7, NOW), tmp_path / "a")))
    run.start()
    run.join(timeout=2)
    assert run.is_alive(), "the run must wait for the append under way"
    racing = at(spread_block(3, 10), NOW - timedelta(days=20), timedelta(minutes=1))
    os.write(under_way, to_json_lines(racing.slice(0, 1)))
    os.close(under_way)  # the append ends: its lock goes
    run.join(timeout=60)  # generous: archiving ten records takes milliseconds
    LineAppender(path).append(to_json_lines(racing.slice(1, 2)))  # after the rename: a new file at the path
    assert report["archived"] == 11
    assert sorted(_archived_ids(tmp_path / "a")) == sorted(request_ids(old) + request_ids(racing)[:1])
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == request_ids(racing)[1:]


def test_a_run_after_an_interrupted_one_archives_both_copies_of_a_day(tmp_path: Path) -> None:
    """An interrupted run left ``D.jsonl.expiring`` (unarchived) and a replay then started ``D.jsonl`` again: the next
    run once renamed the new file over the unarchived one (a day lost) and then failed on the missing copy."""
    folder = tmp_path / FILE_LOG_NAME
    store = FileStore(folder)
    old_day = NOW - timedelta(days=20)
    first, second = (
        at(spread_block(30, 3), old_day, timedelta(minutes=1)),
        at(spread_block(20, 4), old_day, timedelta(minutes=1)),
    )
    asyncio.run(store.insert(first))
    (path,) = [p for _, p in day_files(folder)]
    os.rename(path, path.with_name(path.name + ".expiring"))  # the interrupted run
    asyncio.run(FileStore(folder).insert(second))  # a replay into the expired day
    report = expire_days(folder, cutoff_for(7, NOW), tmp_path / "archive")
    assert sorted(_archived_ids(tmp_path / "archive")) == sorted(request_ids(first) + request_ids(second))
    assert report["archived"] == len(first) + len(second) and not list(folder.glob("*.jsonl*"))
