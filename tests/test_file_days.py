"""The file log in day files: each record in the file of its decision's UTC day (a midnight batch split, an old
replay back to its own day), a window read from its days' files only, and a log an earlier version wrote as
one file split into day files at the log writer's start, once, also after a crash midway."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from core.settings import Settings
from prediction_log.files import store as file_store
from prediction_log.files.days import day_files
from prediction_log.files.jsonl import to_json_lines
from prediction_log.files.store import FileStore
from prediction_log.records import Block, request_ids
from prediction_log.stores import FILE_LOG_NAME, SINGLE_FILE_LOG_NAME, open_file_log
from tests.support.file_log import log_lines
from tests.test_aggregates import spread_block

MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)


def at(block: Block, start: datetime, step: timedelta) -> Block:
    index = block.schema.get_field_index("ts")
    ts = pa.array([start + i * step for i in range(len(block))], pa.timestamp("us", tz="UTC"))
    return block.set_column(index, block.schema.field(index), ts)


def _days_of(data_dir: Path) -> dict[date, list[str]]:
    return {day: [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
            for day, path in day_files(data_dir / FILE_LOG_NAME)}


def test_a_batch_across_midnight_and_an_old_replay_land_in_their_own_days(tmp_path: Path) -> None:
    store = FileStore(tmp_path / FILE_LOG_NAME)
    batch = at(spread_block(60, 1), MIDNIGHT - timedelta(minutes=30), timedelta(minutes=1))   # 30 before, 30 after
    replayed = at(spread_block(10, 2), MIDNIGHT - timedelta(days=5), timedelta(seconds=1))
    assert asyncio.run(store.insert(batch)) == 60
    assert asyncio.run(store.insert(replayed)) == 10
    assert asyncio.run(store.insert(batch)) == 0   # a retried flush: nothing twice
    ids = request_ids(batch)
    assert _days_of(tmp_path) == {date(2026, 11, 15): request_ids(replayed), date(2026, 11, 19): ids[:30],
                                  date(2026, 11, 20): ids[30:]}
    assert asyncio.run(store.count()) == 70
    assert all(store.time_ordered(day) for day in _days_of(tmp_path))   # each day in order of its own
    assert asyncio.run(FileStore(tmp_path / FILE_LOG_NAME).insert(batch)) == 0   # nor after a restart


def test_a_window_reads_the_files_of_its_days_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / FILE_LOG_NAME)
    records = at(spread_block(120, 3), MIDNIGHT - timedelta(days=9), timedelta(hours=2))   # 10 days
    asyncio.run(store.insert(records))
    opened: list[str] = []
    real = file_store.complete_lines

    def watched(path: Path):  # type: ignore[no-untyped-def]
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(file_store, "complete_lines", watched)
    since = MIDNIGHT - timedelta(days=2, hours=1)
    window = asyncio.run(store.records_between(since, MIDNIGHT))
    assert sorted(opened) == ["2026-11-17.jsonl", "2026-11-18.jsonl", "2026-11-19.jsonl"]
    inside = [i for i, ts in zip(request_ids(records), records.column("ts").to_pylist()) if since <= ts < MIDNIGHT]
    assert request_ids(window) == inside and len(inside) == 24   # two whole days


def test_a_single_file_log_is_split_into_day_files_once_even_after_a_crash_midway(tmp_path: Path) -> None:
    records = at(spread_block(90, 4), MIDNIGHT - timedelta(days=2), timedelta(hours=1))
    single = tmp_path / SINGLE_FILE_LOG_NAME
    data = to_json_lines(records)
    single.write_bytes(data + data[:50])   # and a torn last line (never acknowledged)
    staging = tmp_path / f"{FILE_LOG_NAME}.splitting"
    staging.mkdir()
    (staging / "2026-11-18.jsonl").write_text("half of an earlier attempt\n")   # a crash midway
    settings = Settings(data_dir=tmp_path)
    store = open_file_log(settings)
    assert not single.exists() and not staging.exists()
    assert [json.loads(line)["request_id"] for line in log_lines(tmp_path)] == request_ids(records)
    assert sorted(_days_of(tmp_path)) == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20),
                                          date(2026, 11, 21)]
    assert asyncio.run(store.count()) == 90
    assert asyncio.run(store.insert(records)) == 0   # the split's ids are known: a re-sent batch is not doubled
    open_file_log(settings)   # a second start: nothing to split
    assert len(log_lines(tmp_path)) == 90
