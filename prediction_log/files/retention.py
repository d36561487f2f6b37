"""Retention of the file log: day files wholly older than the cutoff archived to Parquet, then removed.

Run by ``python -m prediction_log.retention`` when there is no ``DATABASE_URL``, while the server runs. A day file is
first renamed to ``….jsonl.expiring`` and locked (``flock``): an append already under way finishes first, and any later
one (a replay of an old spool into that day) finds the name free and starts a new file, which the next run expires in
turn. A run interrupted before the removal leaves the ``.expiring`` file, and the next run archives it again, before a
new file of that day (the archive may hold a day twice, the log never loses one; each archive file of a run is
numbered). Outcomes and group memberships of the file log are not expired (``docs/prediction-log.md``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.private_files import PRIVATE_FILE_MODE, private_dir
from prediction_log.files.days import ONE_DAY, day_files, day_path, day_start, unordered_marker
from prediction_log.files.jsonl import parse_line
from prediction_log.files.lines import LineCounter, complete_lines
from prediction_log.records import SCHEMA, from_rows

EXPIRING = ".expiring"
CHUNK = 50_000
"""Records parsed and written to the archive at once."""


def _expired_days(directory: Path, cutoff: datetime) -> list[tuple[date, Path]]:
    """Day files whose whole day is before the cutoff, and files a run before this one did not finish."""
    days = [(day, path) for day, path in day_files(directory, until=cutoff) if day_start(day) + ONE_DAY <= cutoff]
    unfinished = [(date.fromisoformat(p.name[:10]), p) for p in directory.glob(f"????-??-??.jsonl{EXPIRING}")]
    # a day's unfinished copy first: the day file of that day is renamed to the same name once it is gone
    return sorted(unfinished + days, key=lambda item: (item[0], not item[1].name.endswith(EXPIRING)))


def _record_chunks(path: Path) -> Iterator[pa.RecordBatch]:
    rows: list[dict[str, Any]] = []
    for line in complete_lines(path):
        try:
            rows.append(parse_line(line))
        except (ValueError, KeyError, TypeError):
            continue  # a torn line: never acknowledged
        if len(rows) == CHUNK:
            yield from_rows(rows)
            rows = []
    if rows:
        yield from_rows(rows)


def _archive(path: Path, target: Path) -> int:
    """The file's records as a Parquet file readable by this user only, on disk (fsync) before returning."""
    archived = 0
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE), "wb") as f:
        with pq.ParquetWriter(f, SCHEMA) as writer:
            for chunk in _record_chunks(path):
                writer.write_batch(chunk)
                archived += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    directory = os.open(target.parent, os.O_RDONLY)  # the archive's name on disk too, before the day is removed
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return archived


def expire_days(
    directory: Path, cutoff: datetime, archive: Path, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Archive and remove the day files wholly before ``cutoff``; what was done (or would be)."""
    expired = _expired_days(directory, cutoff)
    report: dict[str, Any] = {
        "expired": sum(LineCounter(path).count() for _, path in expired),
        "archived": 0,
        "days_removed": [day.isoformat() for day, _ in expired],
    }
    if dry_run or not expired:
        return report
    private_dir(archive)
    stamp = f"{now or datetime.now(UTC):%Y%m%dT%H%M%S}"
    for part, (day, path) in enumerate(expired):
        expiring = path if path.name.endswith(EXPIRING) else path.with_name(path.name + EXPIRING)
        if expiring != path:
            os.rename(path, expiring)  # never over an unfinished copy: that was archived and removed just before
        fd = os.open(expiring, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # an append under way to this file finishes first
            report["archived"] += _archive(expiring, archive / f"predictions-{day.isoformat()}-{stamp}-{part}.parquet")
            expiring.unlink()
            if not day_path(directory, day).exists():  # no replay has started it again
                unordered_marker(directory, day).unlink(missing_ok=True)
        finally:
            os.close(fd)
    return report
