"""The file log's window reads go chunk by chunk and parse only the lines they need, with the answers of a
whole-window read: records, summary, labelled decisions, shadowed decisions (issue 24: 1M records)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitoring.scenarios import SCENARIOS, applicants
from monitoring.traffic import backfill_records
from prediction_log import histograms
from prediction_log.aggregates import bucket_for, of_block, summary, window_start
from prediction_log.files import store as file_store
from prediction_log.files.jsonl import UnreadableLines, line_request_id, to_json_lines
from prediction_log.files.outcomes import FileOutcomes
from prediction_log.files.store import FileStore
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, latency_quantiles
from prediction_log.outcomes import Outcomes, shadowed_rows
from prediction_log.records import Block, as_dicts

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SINCE, UNTIL = NOW - timedelta(days=2), NOW - timedelta(hours=3)


@pytest.fixture(scope="module")
def records() -> Block:
    """3,000 decisions over three days; every fifth scored by a shadow challenger; one odd request_id."""
    block = backfill_records(applicants(SCENARIOS["control"], 3000, seed=8, ramp=False), days=3, end=NOW)
    n = len(block)
    shadowed = np.arange(n) % 5 == 0
    probability = block.column("probability_default").to_numpy()
    columns = {
        "challenger_version": pa.array(np.where(shadowed, "c1", None).tolist(), pa.string()),
        "challenger_probability": pa.array(np.where(shadowed, probability * 0.9, np.nan), mask=~shadowed),
        "challenger_decision": pa.array(np.where(shadowed, "approved", None).tolist(), pa.string()),
        "request_id": pa.array(['odd "id"\\n'] + block.column("request_id").to_pylist()[1:]),
    }
    for name, values in columns.items():
        block = block.set_column(block.schema.get_field_index(name), name, values)
    return block


@pytest.fixture()
def store(tmp_path: Path, records: Block, monkeypatch: pytest.MonkeyPatch) -> FileStore:
    monkeypatch.setattr(file_store, "CHUNK_RECORDS", 256)   # many chunks, a partial last one
    store = FileStore(tmp_path / "predictions")
    asyncio.run(store.insert(records))
    return store


def _window(records: Block, since: datetime | None, until: datetime | None) -> Block:
    ts = records.column("ts").to_pylist()
    keep = [(since is None or t >= since) and (until is None or t < until) for t in ts]
    return records.filter(pa.array(keep))


def test_request_ids_are_read_off_the_line_even_when_escaped(records: Block) -> None:
    lines = to_json_lines(records.slice(0, 3)).decode().splitlines()
    unreadable = UnreadableLines("test")
    assert [line_request_id(line, unreadable) for line in lines] == records.column("request_id").to_pylist()[:3]
    assert line_request_id('{"request_id":"torn', unreadable) is None and unreadable.count == 1


def test_window_and_summary_match_a_whole_read(store: FileStore, records: Block) -> None:
    window = asyncio.run(store.records_between(SINCE, UNTIL))
    expected = _window(records, SINCE, UNTIL)
    assert sorted(as_dicts(window), key=lambda r: r["request_id"]) == sorted(as_dicts(expected),
                                                                            key=lambda r: r["request_id"])
    assert window.column("ts").to_pylist() == sorted(window.column("ts").to_pylist())
    bucket = bucket_for(SINCE, UNTIL)
    buckets = _window(records, window_start(SINCE, bucket), UNTIL)
    latency = histograms.of_block(buckets, LATENCY)[LATENCY_VARIABLE]
    whole = {**summary(of_block(buckets, bucket), bucket), "latency_ms_quantiles": latency_quantiles(latency)}
    assert asyncio.run(store.summary(SINCE, UNTIL)) == whole


def test_labelled_and_shadowed_match_a_whole_read(store: FileStore, records: Block, tmp_path: Path) -> None:
    outcomes = FileOutcomes(tmp_path / "outcomes.jsonl", store)
    ids = records.column("request_id").to_pylist()[::7]
    defaulted = [i % 2 for i in range(len(ids))]
    receipt = asyncio.run(outcomes.record(Outcomes(ids, defaulted, [NOW] * len(ids))))
    assert receipt.accepted == len(ids)
    labelled = asyncio.run(outcomes.labelled(SINCE, UNTIL, None))
    window = _window(records, SINCE, UNTIL)
    by_id = dict(zip(ids, defaulted))
    expected = [(p, by_id[i]) for i, p in zip(window.column("request_id").to_pylist(),
                                              window.column("probability_default").to_pylist()) if i in by_id]
    assert sorted(zip(labelled.probability.tolist(), labelled.defaulted.tolist())) == sorted(expected)
    version = records.column("model_version")[0].as_py()
    assert len(asyncio.run(outcomes.labelled(SINCE, UNTIL, version))) == len(expected)
    assert len(asyncio.run(outcomes.labelled(SINCE, UNTIL, "no-such-version"))) == 0

    shadowed = asyncio.run(outcomes.shadowed(None, None))
    whole = shadowed_rows(records, by_id)
    assert len(shadowed.defaulted) == len(records) // 5 + (len(records) % 5 > 0)
    for name, values in asdict(whole).items():
        assert sorted(map(str, getattr(shadowed, name).tolist())) == sorted(map(str, values.tolist())), name


def test_a_window_of_a_few_columns(store: FileStore, records: Block) -> None:
    columns = ["request_id", "probability_default"]
    window = asyncio.run(store.records_between(SINCE, UNTIL, columns))
    assert window.schema.names == columns
    expected = _window(records, SINCE, UNTIL).select(columns)
    assert sorted(window.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)
    assert asyncio.run(store.records_between(NOW, None, columns)).schema.names == columns   # empty window
