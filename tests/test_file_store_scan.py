"""The file log's newest-first scan of its day files and its line counter agree with a full read, in and out of
time order."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from monitoring.scenarios import SCENARIOS, applicants
from monitoring.traffic import backfill_records
from prediction_log.files.days import day_files, day_path
from prediction_log.files.jsonl import to_json_lines
from prediction_log.files.lines import LineCounter, lines_backwards
from prediction_log.files.store import FileStore
from prediction_log.query import LogQuery
from prediction_log.records import Block, as_dicts
from prediction_log.scan_deadline import ScanTimeout, scans_within

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
QUERIES = [
    LogQuery(limit=10), LogQuery(limit=100, offset=250), LogQuery(limit=50, decision="denied"),
    LogQuery(limit=1000, since=NOW - timedelta(hours=30)), LogQuery(limit=20, until=NOW - timedelta(days=1)),
    LogQuery(limit=7, offset=3, since=NOW - timedelta(days=2), until=NOW - timedelta(hours=5), decision="approved"),
]


def _ts(row: dict) -> datetime:
    return datetime.fromisoformat(row["ts"])


def _expected(records: Block, q: LogQuery) -> list[dict]:
    rows = [r for r in as_dicts(records) if (q.since is None or _ts(r) >= q.since)
            and (q.until is None or _ts(r) < q.until) and (q.decision is None or r["credit_decision"] == q.decision)]
    rows.sort(key=lambda r: (_ts(r), r["request_id"]), reverse=True)
    return rows[q.offset:q.offset + q.limit]


def _days(store: FileStore) -> list[date]:
    return [day for day, _ in day_files(store.directory)]


def _ids(block: Block) -> list[str]:
    return block.column("request_id").to_pylist()


@pytest.fixture(scope="module")
def records() -> Block:
    return backfill_records(applicants(SCENARIOS["control"], 4000, seed=5, ramp=False), days=3, end=NOW)


def _insert(store: FileStore, records: Block, chunk: int = 500) -> None:
    for start in range(0, len(records), chunk):
        asyncio.run(store.insert(records.slice(start, chunk)))


def test_time_ordered_file_is_scanned_from_its_end(tmp_path: Path, records: Block) -> None:
    store = FileStore(tmp_path / "predictions")
    _insert(store, records)
    assert len(_days(store)) == 4 and all(store.time_ordered(day) for day in _days(store))
    for q in QUERIES:
        assert asyncio.run(store.query(q)) == _expected(records, q), q
    assert asyncio.run(store.count()) == len(records)


def test_backfill_of_older_records_falls_back_to_a_full_read(tmp_path: Path, records: Block) -> None:
    store = FileStore(tmp_path / "predictions")
    newer, older = records.slice(2000), records.slice(0, 2000)
    _insert(store, newer)
    _insert(FileStore(store.directory), older)       # another writer (a backfill tool) appends older records
    split_day = newer.column("ts")[0].as_py().date()   # holds older records appended after newer ones
    assert [day for day in _days(store) if not store.time_ordered(day)] == [split_day]
    for q in QUERIES:
        assert asyncio.run(store.query(q)) == _expected(records, q), q
    assert asyncio.run(store.count()) == len(records)


def test_backward_lines_and_counter(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    lines = [f'{{"n": {i}, "pad": "{"x" * (i % 37)}"}}'.encode() for i in range(500)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert list(lines_backwards(path, block=64)) == lines[::-1]
    counter = LineCounter(path)
    assert counter.count() == 500
    with path.open("ab") as out:
        out.write(b'{"n": 500}\n{"n": 501}\n')
    assert counter.count() == 502
    path.write_bytes(b'{"n": 0}\n')                   # replaced: counted again from the start
    assert counter.count() == 1


def _half_a_line(records: Block) -> bytes:
    data = to_json_lines(records)
    return data[:data.index(b"\n") // 2]


def test_an_append_in_progress_is_not_read(tmp_path: Path, records: Block) -> None:
    """A reader that sees half of an append (no newline yet) returns the complete records only."""
    store = FileStore(tmp_path / "predictions")
    done, rest = records.slice(0, 1000), records.slice(1000, 10)
    _insert(store, done)
    with day_path(store.directory, _days(store)[-1]).open("ab") as f:
        f.write(_half_a_line(rest))          # a write another reader catches half-way
    for q in QUERIES:
        assert asyncio.run(store.query(q)) == _expected(done, q), q
    window = asyncio.run(store.records_between(None, None))
    assert _ids(window) == _ids(done)   # backfill timestamps ascend
    assert asyncio.run(store.count()) == len(done)


def test_a_line_torn_by_a_crash_is_skipped_and_a_resent_batch_is_not_doubled(tmp_path: Path, records: Block) -> None:
    path = tmp_path / "predictions"
    _insert(FileStore(path), records.slice(0, 500))
    day = records.column("ts")[500].as_py().date()
    with day_path(path, day).open("ab") as f:   # the writer died mid-append: 5 lines written, the 6th torn
        f.write(to_json_lines(records.slice(500, 5)) + _half_a_line(records.slice(505, 5)))
    restarted = FileStore(path)
    _insert(restarted, records.slice(500, 500))   # the shipper re-sends the whole batch, then the rest
    for q in QUERIES:
        assert asyncio.run(restarted.query(q)) == _expected(records.slice(0, 1000), q), q
    window = asyncio.run(restarted.records_between(None, None))
    assert sorted(_ids(window)) == sorted(_ids(records.slice(0, 1000)))   # each exactly once


def test_a_bound_before_1970_reads_the_whole_log(tmp_path: Path, records: Block) -> None:
    """Year 1 (from the OpenAPI fuzz test) once overflowed the scan's slack arithmetic: a 503."""
    store = FileStore(tmp_path / "predictions")
    _insert(store, records)
    everything = LogQuery(limit=1000, since=datetime(1, 1, 1, 0, 0, 3))
    assert everything.since == datetime(1970, 1, 1, tzinfo=UTC)
    assert asyncio.run(store.query(everything)) == _expected(records, everything)


def test_paging_by_cursor_shows_every_record_of_a_block_that_shares_one_timestamp(tmp_path: Path,
                                                                                  records: Block) -> None:
    """A 1,500-row batch is one block with one timestamp: paging by ``until`` would skip 500 of them."""
    import pyarrow as pa

    store = FileStore(tmp_path / "predictions")
    block = records.slice(0, 1500)
    one_ts = pa.array([NOW] * len(block), type=block.schema.field("ts").type)
    block = block.set_column(block.schema.get_field_index("ts"), "ts", one_ts)
    _insert(store, records.slice(1500, 100))
    _insert(store, block, chunk=1500)
    seen: list[str] = []
    cursor = None
    while True:
        page = asyncio.run(store.query(LogQuery(limit=1000, cursor=cursor)))
        seen += [r["request_id"] for r in page]
        if len(page) < 1000:
            break
        cursor = f"{page[-1]['ts']}|{page[-1]['request_id']}"
    assert sorted(seen) == sorted(_ids(block) + _ids(records.slice(1500, 100)))


def test_a_window_sample_is_uniform_bounded_and_counts_the_whole_window(tmp_path: Path, records: Block) -> None:
    """The drift report reads a sample: memory bounded by its size; the window's true size is reported."""
    store = FileStore(tmp_path / "predictions")
    _insert(store, records)
    since = NOW - timedelta(days=2)
    inside = [r for r in as_dicts(records) if _ts(r) >= since]
    sample, total = asyncio.run(store.sample_between(since, None, 500))
    assert total == len(inside) and len(sample) == 500
    ids = set(_ids(sample))
    assert ids <= {r["request_id"] for r in inside}
    times = sample.column("ts").to_pylist()
    assert times == sorted(times)
    everything, total = asyncio.run(store.sample_between(since, None, 10_000))
    assert total == len(everything) == len(inside)


def test_a_read_past_its_deadline_stops_its_scan_and_frees_the_read_thread(tmp_path: Path) -> None:
    """A scan on a read thread cannot be cancelled from outside: before the deadline, a request that timed out left
    its whole-log scan running, and the next reads queued behind it (``/decisions/{unknown}``, outcome posts)."""
    store = FileStore(tmp_path / "predictions", reads=1)
    line = '{"request_id":"%07d","ts":"2026-11-24T12:00:00+00:00"}\n'
    day_path(store.directory, NOW.date()).write_text("".join(line % i for i in range(600_000)))

    async def scenario() -> tuple[float, float]:
        started = time.monotonic()
        assert await store.present({"unknown"}) == set()
        whole = time.monotonic() - started
        started = time.monotonic()
        with scans_within(whole / 20), pytest.raises(ScanTimeout):
            await store.present({"unknown"})   # raised by the scan itself, on the read thread: the scan has ended
        stopped = time.monotonic() - started
        assert await store.find("0599999") is not None   # and the one read thread answers the next read
        return whole, stopped

    whole, stopped = asyncio.run(scenario())
    assert stopped < whole / 2, (whole, stopped)   # generous: this VM's timing varies
