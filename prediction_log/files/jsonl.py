"""The decision's JSON line, the one module that knows it: one decision per line, ``request_id`` first and ``ts``
second (the file log's day files, the spool, the rejected file). Written by ``to_json_lines``; read whole by
``parse_line``, or cheaply off the text (``line_request_id``, ``line_ts``, ``has_challenger``). Lines that cannot be
read (a crash cut an append short, an edit by hand) are ``UnreadableLines``: counted, logged, never a failure.
Also the JSON-object files beside the file log (``JsonObjects``: outcomes, groups, audit entries, monitoring runs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from prediction_log.appender import LineAppender
from prediction_log.files.lines import complete_lines
from prediction_log.records import COLUMNS, Block, column_lists, from_rows

logger = logging.getLogger(__name__)
ID_PREFIX = '{"request_id":"'
_ROW_START = b',{"request_id":'
_TS_KEY = '"ts":"'
_NO_CHALLENGER = '"challenger_probability":null'


def to_json_lines(block: Block) -> bytes:
    """JSONL bytes, one object per record, each line ending in a newline (timestamps in ISO 8601).

    Without explanations orjson encodes the whole list in one call (7x cheaper than one call per
    row): every object begins with ``{"request_id":`` and nothing nested can, so the list splits
    into lines at exactly those boundaries.
    """
    if len(block) == 0:
        return b""
    rows = [dict(zip(COLUMNS, values)) for values in zip(*column_lists(block))]
    if block.column("explanation").null_count != len(block):
        return b"".join([orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows])
    return orjson.dumps(rows)[1:-1].replace(b"}" + _ROW_START, b"}\n" + _ROW_START[1:]) + b"\n"


def parse_line(line: str | bytes) -> dict[str, Any]:
    """One line as a dict (``ts`` still text); raises ValueError/KeyError for a torn line."""
    row = orjson.loads(line)
    if not isinstance(row, dict) or "request_id" not in row or "ts" not in row:
        raise ValueError("not a decision record")
    return row


def from_json_lines(lines: Iterable[str | bytes]) -> Block:
    return from_rows(parse_line(line) for line in lines)


class UnreadableLines:
    """The distinct lines of one file (or kind of file) that could not be read: counted, the first ``LOGGED`` and
    then every ``LOG_EVERY``-th logged; exposed in ``/predictions/stats`` (``unreadable_lines``)."""

    LOGGED, LOG_EVERY, REMEMBERED = 5, 1000, 10_000

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self._seen: set[int] = set()

    def saw(self, line: str | bytes) -> None:
        key = hash(line)
        if key in self._seen:
            return   # a line read again by a later scan is the same line
        if len(self._seen) < self.REMEMBERED:
            self._seen.add(key)
        self.count += 1
        if self.count <= self.LOGGED or self.count % self.LOG_EVERY == 0:
            logger.warning("skipping an unreadable line in %s (%d so far): %.80r", self.what, self.count, line)


def parsed(line: str | bytes, unreadable: UnreadableLines) -> dict[str, Any] | None:
    """The record of a line, or None (counted in ``unreadable``) for a line that is not one."""
    try:
        return parse_line(line)
    except (ValueError, KeyError, TypeError):
        unreadable.saw(line)
        return None


def line_request_id(line: str, unreadable: UnreadableLines) -> str | None:
    """A line's request_id read off its start; parsed only when an id holds an escaped character; None for a
    torn line."""
    if line.startswith(ID_PREFIX) and (end := line.find('"', len(ID_PREFIX))) > 0:
        raw = line[len(ID_PREFIX):end]
        if "\\" not in raw:
            return raw
    return r["request_id"] if (r := parsed(line, unreadable)) is not None else None


def line_ts(line: str) -> datetime | None:
    """A line's timestamp read off the text (the second field), without parsing the record."""
    start = line.find(_TS_KEY)
    end = line.find('"', start + len(_TS_KEY)) if start >= 0 else -1
    try:
        return datetime.fromisoformat(line[start + len(_TS_KEY):end]) if end > 0 else None
    except ValueError:
        return None


def has_challenger(line: str) -> bool:
    """Whether a shadow challenger scored the line's decision (read off the text)."""
    return _NO_CHALLENGER not in line


class JsonObjects:
    """A JSONL file of objects beside the file log, appended whole (fsync'd) and read back whole; unreadable lines
    are ``UnreadableLines``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unreadable = UnreadableLines(path.name)
        self._appender = LineAppender(path)

    def read(self) -> Iterator[dict[str, Any]]:
        for line in complete_lines(self.path):
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                item = None
            if isinstance(item, dict):
                yield item
            else:
                self.unreadable.saw(line)

    def append(self, items: Iterable[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(item) + b"\n" for item in items)
        if data:
            self._appender.append(data)
