"""The file log's day files: one JSONL file per UTC day of the decisions' timestamps.

A record's file is fixed by its decision timestamp (as its PostgreSQL partition is), so a window is read
from its days' files only, a replay of an old record goes back to its own day, and retention removes
whole days (``file_retention``). ``DATA_DIR/predictions/2026-12-01.jsonl`` and so on.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from core.private_files import PRIVATE_FILE_MODE, private_dir
from prediction_log.files.lines import complete_lines
from prediction_log.records import Block

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_TS_KEY = '"ts":"'
ONE_DAY = timedelta(days=1)
UNORDERED = ".unordered"
"""Suffix of the marker beside a day file whose lines are not in time order (a backfill, a replay)."""
logger = logging.getLogger(__name__)


def day_path(directory: Path, day: date) -> Path:
    return directory / f"{day.isoformat()}.jsonl"


def unordered_marker(directory: Path, day: date) -> Path:
    """The marker beside a day file whose lines are not in time order."""
    return day_path(directory, day).with_name(f"{day.isoformat()}.jsonl{UNORDERED}")


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def day_files(directory: Path, since: datetime | None = None, until: datetime | None = None) -> list[tuple[date, Path]]:
    """The day files holding ``since <= ts < until`` (all without bounds), oldest day first."""
    if not directory.is_dir():
        return []
    days = []
    for entry in os.scandir(directory):
        if (m := _NAME.match(entry.name)) is not None:
            day = date.fromisoformat(m.group(1))
            start = day_start(day)
            if (until is None or start < until) and (since is None or start + ONE_DAY > since):
                days.append((day, Path(entry.path)))
    return sorted(days)


def by_day(block: Block) -> Iterator[tuple[date, Block]]:
    """The block's rows grouped by the UTC day of their timestamp (one group unless it spans a midnight)."""
    days = pc.cast(block.column("ts"), pa.date32())
    bounds = pc.min_max(days)
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    if first == last:
        yield first, block
        return
    for day in pc.unique(days).to_pylist():
        yield day, block.filter(pc.equal(days, pa.scalar(day, pa.date32())))


def line_day(line: str) -> date | None:
    """The UTC day of a line's timestamp, read off the text (``"ts":"2026-12-01T…``); None for a torn line."""
    start = line.find(_TS_KEY)
    try:
        return date.fromisoformat(line[start + len(_TS_KEY):start + len(_TS_KEY) + 10]) if start >= 0 else None
    except ValueError:
        return None


def split_single_file(single: Path, directory: Path) -> int:
    """Move a log written as one file (``predictions.jsonl``, before day files) into day files; how many
    lines. Written into a sibling folder that is renamed into place when complete, so a crash midway
    leaves the single file as it was and the next start does it again; the single file goes last."""
    if directory.exists():
        if single.exists():   # renamed into place, then stopped before the single file was removed
            single.unlink()
        return 0
    staging = directory.with_name(directory.name + ".splitting")
    shutil.rmtree(staging, ignore_errors=True)
    private_dir(staging)
    files: dict[date, int] = {}
    lines = 0
    try:
        for line in complete_lines(single):
            day = line_day(line)
            if day is None:
                continue   # a torn line: never acknowledged
            if day not in files:
                files[day] = os.open(day_path(staging, day), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                     PRIVATE_FILE_MODE)
            data = memoryview(line.encode())
            while data:
                data = data[os.write(files[day], data):]
            lines += 1
        for fd in files.values():
            os.fsync(fd)
    finally:
        for fd in files.values():
            os.close(fd)
    unordered = single.with_name(single.name + UNORDERED)
    if unordered.exists():   # the single file's order was not kept: nor is each day's
        for day in files:
            unordered_marker(staging, day).touch()
    os.rename(staging, directory)
    single.unlink()
    unordered.unlink(missing_ok=True)
    logger.info("file log: %d lines of %s moved into %d day files in %s", lines, single, len(files), directory)
    return lines
