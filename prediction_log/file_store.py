"""The embedded default store: an append-only JSONL file (one decision per line)."""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from prediction_log.query import LogQuery
from prediction_log.records import COLUMNS, Record, as_dict, from_json_line, timestamp, to_json_lines

RECENT_IDS = 200_000
_DECISION = COLUMNS.index("credit_decision")


class FileStore:
    """Appends with fsync; skips request_ids it has recently written (retried flushes)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = asyncio.Lock()

    def _append_sync(self, records: list[Record]) -> int:
        fresh = [r for r in records if r[0] not in self._recent]
        if fresh:
            with self.path.open("ab") as out:
                out.write(to_json_lines(fresh))
                out.flush()
                os.fsync(out.fileno())
        for r in fresh:
            self._recent[r[0]] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return len(fresh)

    async def insert(self, records: list[Record]) -> int:
        """Append records that were not written before; returns how many were new."""
        async with self._lock:
            return await asyncio.to_thread(self._append_sync, records)

    async def replay(self, records: list[Record]) -> int:
        """Append spooled records, skipping any request_id already in the file."""
        async with self._lock:
            present = await asyncio.to_thread(self._all_ids)
            return await asyncio.to_thread(self._append_sync, [r for r in records if r[0] not in present])

    def _all_ids(self) -> set[str]:
        return {r[0] for r in self._read_all()}

    def _read_all(self) -> list[Record]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [from_json_line(line) for line in lines if line.strip()]

    def _query_sync(self, q: LogQuery) -> list[dict]:
        rows = [
            r for r in self._read_all()
            if (q.since is None or timestamp(r) >= q.since)
            and (q.until is None or timestamp(r) < q.until)
            and (q.decision is None or r[_DECISION] == q.decision)
        ]
        rows.sort(key=timestamp, reverse=True)
        return [as_dict(r) for r in rows[q.offset:q.offset + q.limit]]

    async def query(self, q: LogQuery) -> list[dict]:
        """Newest-first page of records matching ``q``."""
        return await asyncio.to_thread(self._query_sync, q)

    async def count(self) -> int:
        return await asyncio.to_thread(lambda: len(self._read_all()))

    def _between_sync(self, since: datetime | None, until: datetime | None) -> list[Record]:
        rows = [r for r in self._read_all()
                if (since is None or timestamp(r) >= since) and (until is None or timestamp(r) < until)]
        rows.sort(key=timestamp)
        return rows

    async def records_between(self, since: datetime | None, until: datetime | None) -> list[Record]:
        """Every record with ``since <= ts < until``, oldest first (monitoring windows)."""
        return await asyncio.to_thread(self._between_sync, since, until)

    async def close(self) -> None:
        return None
