"""The embedded default store: append-only JSONL day files (one decision per line, one file per UTC day)."""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.private_files import private_dir
from prediction_log import histograms
from prediction_log.aggregates import Bucket, bucket_for, of_block, summary, window_start
from prediction_log.appender import LineAppender
from prediction_log.files.days import ONE_DAY, by_day, day_files, day_path, day_start, unordered_marker
from prediction_log.files.jsonl import ID_PREFIX, UnreadableLines, line_request_id, line_ts, parsed, to_json_lines
from prediction_log.files.lines import LineCounter, complete_lines, lines_backwards
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, Bins
from prediction_log.labelled_bins import LabelledBins, scored_block
from prediction_log.labelled_bins import empty as empty_bins
from prediction_log.query import LogQuery
from prediction_log.records import (
    COLUMNS,
    Block,
    empty_block,
    from_rows,
    request_ids,
    timestamp_of,
)

RECENT_IDS = 200_000
RESTART_IDS = 20_000
"""Lines read back at a start to recognise re-sent batches (ten times the shipper's largest flush)."""
ORDER_SLACK = timedelta(seconds=60)
"""How far out of time order appended lines may be (flush interval, clock steps between replicas)."""
logger = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK_RECORDS = 20_000
"""Records parsed at once by a scan of a window (~36 MB of parsed records)."""
APPENDERS = 8
"""Day files kept open for appends (today, yesterday around midnight, the days of a replay)."""


class FileStore:
    """Appends whole lines with fsync (``LineAppender``) to the file of each record's UTC day
    (``file_days``); skips request_ids it has recently written (retried flushes)."""

    kind = "file"
    spools_on_failure = False
    data_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, directory: Path, reads: int = 2) -> None:
        self.directory = directory
        self._appends = ThreadPoolExecutor(1, "file-log-append")
        """Appends on a thread of their own: a read scanning the file never holds one up."""
        self._reads = ThreadPoolExecutor(reads, "file-log-read")
        private_dir(directory.parent)   # DATA_DIR: outcomes and groups lie beside the log
        private_dir(directory)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = asyncio.Lock()
        self._counters: dict[Path, LineCounter] = {}
        self._newest: dict[date, datetime | None] = {}
        self._opened = False
        self._present: set[str] | None = None
        self._appenders: OrderedDict[date, LineAppender] = OrderedDict()
        self.unreadable = UnreadableLines("the file log")

    def _appender(self, day: date) -> LineAppender:
        if day not in self._appenders:
            self._appenders[day] = LineAppender(day_path(self.directory, day))
            if len(self._appenders) > APPENDERS:
                self._appenders.popitem(last=False)
        self._appenders.move_to_end(day)
        return self._appenders[day]

    def _note_order(self, day: date, fresh: Block) -> None:
        """Mark a day's file unordered when records older than its newest (by > ORDER_SLACK) are appended."""
        if day not in self._newest:   # first append to this day since the start: its newest line
            self._newest[day] = next((timestamp_of(r) for line in lines_backwards(day_path(self.directory, day))
                                      if (r := parsed(line, self.unreadable)) is not None), None)
        bounds = pc.min_max(fresh.column("ts"))
        oldest, newest = bounds["min"].as_py(), bounds["max"].as_py()
        known = self._newest[day]
        if known is not None and oldest < known - ORDER_SLACK:
            unordered_marker(self.directory, day).touch()
        self._newest[day] = newest if known is None else max(known, newest)

    def time_ordered(self, day: date) -> bool:
        """Whether a day's lines are in time order (up to ORDER_SLACK): a backfill or a replay breaks it."""
        return not unordered_marker(self.directory, day).exists()

    def _remember_tail(self) -> None:
        """After a start, from the newest files' last lines: the request_ids, so a batch re-sent after a
        crash (written, never acknowledged) is not appended twice."""
        lines = (line for _, path in reversed(day_files(self.directory)) for line in lines_backwards(path))
        for line in itertools.islice(lines, RESTART_IDS):
            if (request_id := line_request_id(line.decode(errors="replace"), self.unreadable)) is not None:
                self._recent[request_id] = None
                self._recent.move_to_end(request_id, last=False)

    def _append_sync(self, block: Block, skip: set[str] | None = None) -> int:
        if not self._opened:   # first append since this store was opened
            self._remember_tail()
            self._opened = True
        ids = request_ids(block)
        keep = [i not in self._recent and (skip is None or i not in skip) for i in ids]
        fresh = block if all(keep) else block.filter(pa.array(keep))
        for day, part in by_day(fresh) if len(fresh) else ():
            self._note_order(day, part)
            self._appender(day).append(to_json_lines(part))
            for i in request_ids(part):   # written: a retry of the block skips these
                self._recent[i] = None
                if skip is not None:
                    skip.add(i)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return len(fresh)

    async def insert(self, block: Block) -> int:
        """Append records that were not written before; returns how many were new."""
        async with self._lock:
            return await self._on(self._appends, self._append_sync, block)

    def _ids_sync(self) -> Iterator[str]:
        """Each line's request_id, read off the line's start: no record is parsed, so memory is the ids',
        not the records' (~40 bytes a line, not ~1.8 kB)."""
        for _, path in day_files(self.directory):
            for line in complete_lines(path):
                if (request_id := line_request_id(line, self.unreadable)) is not None:
                    yield request_id

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The record of ``request_id`` (one streamed pass, newest lines first: a notice is usually recent)."""
        prefix = f'{ID_PREFIX}{request_id}"'.encode()

        def scan() -> dict[str, Any] | None:
            for _, path in reversed(day_files(self.directory)):
                for line in lines_backwards(path):
                    if line.startswith(prefix) and (r := parsed(line, self.unreadable)) is not None:
                        return {c: r.get(c) for c in COLUMNS}
            return None

        return await self._on(self._reads, scan)

    async def known_ids(self) -> set[str]:
        """Every request_id in the file: read once per spool replay, then kept up to date by ``replay``."""
        return await self._on(self._reads, lambda: set(self._ids_sync()))

    async def present(self, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` are in the file (one streamed pass; memory bounded by ``ids``)."""
        wanted = set(ids)
        return await self._on(self._reads, lambda: {i for i in self._ids_sync() if i in wanted})

    async def replay(self, block: Block) -> int:
        """Append spooled records, skipping any request_id already in the file (its ids are read once per
        replay pass, then kept up to date, until ``replay_done``)."""
        if self._present is None:
            self._present = await self.known_ids()
        async with self._lock:
            return await self._on(self._appends, self._append_sync, block, self._present)

    def replay_done(self) -> None:
        self._present = None

    async def insert_one(self, block: Block) -> int:
        return await self.insert(block)

    def set_write_timeout(self, seconds: float) -> None:
        return None   # an append waits for the disk; a failure goes back to the shipper

    def _query_sync(self, q: LogQuery) -> list[dict]:
        """Newest-first page. The window's day files are read newest day first, each from its end; the
        read stops at a day older than the oldest record the page needs, and within a time-ordered day
        ``ORDER_SLACK`` past it (an unordered day is read whole). Memory is the page's ``offset + limit``
        rows (a heap), not the log's."""
        wanted = q.offset + q.limit
        floor: datetime | None = None
        heap: list[tuple[datetime, str, dict[str, Any]]] = []   # the newest ``wanted`` rows seen so far
        after = q.after()
        for day, path in reversed(day_files(self.directory, q.since, q.until)):
            if floor is not None and day_start(day) + ONE_DAY <= floor:
                break   # every record of this day and older ones is older than the page
            ordered = self.time_ordered(day)
            for line in lines_backwards(path):
                if (r := parsed(line, self.unreadable)) is None:
                    continue
                ts = timestamp_of(r)
                if ordered and ((floor is not None and ts < floor - ORDER_SLACK)
                                or (q.since is not None and ts < q.since - ORDER_SLACK)):
                    break
                if ((q.since is None or ts >= q.since) and (q.until is None or ts < q.until)
                        and (q.decision is None or r["credit_decision"] == q.decision)
                        and (after is None or (ts, r["request_id"]) < after)):
                    item = (ts, r["request_id"], r)   # the order of the PostgreSQL store: ts, then request_id
                    if len(heap) < wanted:
                        heapq.heappush(heap, item)
                    elif item[:2] > heap[0][:2]:
                        heapq.heapreplace(heap, item)
                    if floor is None and len(heap) == wanted:
                        floor = heap[0][0]
        page = sorted(heap, key=lambda item: item[:2], reverse=True)[q.offset:wanted]
        return [{c: r.get(c) for c in COLUMNS} for _, _, r in page]

    async def query(self, q: LogQuery) -> list[dict]:
        """Newest-first page of records matching ``q``."""
        return await self._on(self._reads, self._query_sync, q)

    def _count_sync(self) -> int:
        paths = [path for _, path in day_files(self.directory)]
        self._counters = {path: self._counters.get(path) or LineCounter(path) for path in paths}
        return sum(counter.count() for counter in self._counters.values())

    async def count(self) -> int:
        """Records in the day files (newlines counted incrementally, not parsed)."""
        return await asyncio.to_thread(self._count_sync)

    def _lines(self, since: datetime | None, until: datetime | None) -> Iterator[str]:
        """The complete lines of the days between ``since`` and ``until``, oldest day first."""
        for _, path in day_files(self.directory, since, until):
            yield from complete_lines(path)

    def _chunks(self, since: datetime | None, until: datetime | None,
                wanted: Callable[[str], bool] | None) -> Iterator[Block]:
        """The window's records in file order, ``CHUNK_RECORDS`` at a time; a line is parsed only when its
        timestamp (read off the text) is in the window and ``wanted(line)`` says so."""
        rows: list[dict[str, Any]] = []
        for line in self._lines(since, until):
            ts = line_ts(line)
            if (ts is None or (since is not None and ts < since) or (until is not None and ts >= until)
                    or (wanted is not None and not wanted(line))):
                continue
            if (r := parsed(line, self.unreadable)) is not None:
                rows.append(r)
            if len(rows) == CHUNK_RECORDS:
                yield from_rows(rows)
                rows = []
        if rows:
            yield from_rows(rows)

    async def fold_between(self, since: datetime | None, until: datetime | None, fold: Callable[[Block], T],
                           wanted: Callable[[str], bool] | None = None) -> list[T]:
        """``fold`` of each chunk of the window's records (on a read thread): memory is one chunk of parsed
        records plus what ``fold`` keeps, not the window (~1.8 kB a parsed record)."""
        return await self._on(self._reads, lambda: [fold(c) for c in self._chunks(since, until, wanted)])

    async def records_between(self, since: datetime | None, until: datetime | None,
                              columns: Sequence[str] | None = None) -> Block:
        """Every record with ``since <= ts < until``, oldest first (monitoring windows); only ``columns`` if
        given (kept chunk by chunk: a window's few columns, not its records)."""
        names = list(columns or COLUMNS)
        chunks = await self.fold_between(since, until, lambda chunk: chunk.select(list({*names, "ts"})))
        if not chunks:
            return empty_block().select(names)
        block = pa.Table.from_batches(chunks).combine_chunks().to_batches()[0]
        return block.take(pc.sort_indices(block, [("ts", "ascending")])).select(names)

    async def summary(self, since: datetime | None, until: datetime | None,
                      bucket: Bucket | None = None) -> dict[str, Any]:
        """``aggregates.summary`` computed chunk by chunk from the window's records (a file log's scale;
        PostgreSQL keeps the aggregates as it writes)."""
        bucket = bucket or bucket_for(since, until)
        parts = await self.fold_between(window_start(since, bucket), until,
                                        lambda chunk: (of_block(chunk, bucket), histograms.of_block(chunk, LATENCY)))
        latency = histograms.added([counts for _, counts in parts], LATENCY)[LATENCY_VARIABLE]
        return {**summary([r for rows, _ in parts for r in rows], bucket),
                "latency_ms_quantiles": histograms.latency_quantiles(latency)}

    async def scored(self, since: datetime | None, until: datetime | None,
                     model_version: str | None = None) -> LabelledBins:
        """The window's decisions counted chunk by chunk into PostgreSQL's ``scored_days`` bins."""
        parts = await self.fold_between(since, until, scored_block)
        bins = LabelledBins.concat(parts) if parts else empty_bins()
        return bins if model_version is None else bins.subset(bins.model_version == model_version)

    async def histograms(self, bins: Bins, since: datetime | None,
                         until: datetime | None) -> dict[str, np.ndarray] | None:
        """The window's counts in ``bins`` (its whole hours, as PostgreSQL's), counted chunk by chunk."""
        parts = await self.fold_between(window_start(since, "hour"), until,
                                        lambda chunk: histograms.of_block(chunk, bins))
        return histograms.added(parts, bins)

    @staticmethod
    async def _on(executor: ThreadPoolExecutor, function: Callable[..., T], *args: Any) -> T:
        """``function`` on ``executor``, in a copy of this context (a read's ``scan_deadline`` goes with it)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(executor, partial(context.run, function, *args))

    def _sample_sync(self, since: datetime | None, until: datetime | None, rows: int, seed: int) -> tuple[Block, int]:
        """Reservoir sampling (Algorithm R) over the window's lines, kept raw; only the sample is parsed."""
        rng = random.Random(seed)
        reservoir: list[str] = []
        seen = 0
        for line in self._lines(since, until):
            ts = line_ts(line)
            if ts is None or (since is not None and ts < since) or (until is not None and ts >= until):
                continue
            seen += 1
            if len(reservoir) < rows:
                reservoir.append(line)
            elif (j := rng.randrange(seen)) < rows:
                reservoir[j] = line
        records = [r for line in reservoir if (r := parsed(line, self.unreadable)) is not None]
        return from_rows(sorted(records, key=timestamp_of)), seen

    async def sample_between(self, since: datetime | None, until: datetime | None, rows: int,
                             seed: int = 0) -> tuple[Block, int]:
        return await self._on(self._reads, self._sample_sync, since, until, rows, seed)

    async def close(self) -> None:
        self._reads.shutdown(wait=False)
        self._appends.shutdown(wait=True)
