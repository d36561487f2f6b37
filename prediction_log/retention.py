"""Retention of the log: decisions older than the retention period archived to Parquet, then deleted.

    uv run python -m prediction_log.retention [--keep-days 762] [--archive-dir DATA_DIR/archive] [--dry-run]

Without ``DATABASE_URL`` it expires the file log's day files wholly before the cutoff (``file_retention``). With it, run
as the tables' owner (the server's least-privilege role may not delete), e.g. daily from cron. The cutoff is the start
of the UTC hour ``keep-days`` ago, so the decision rows and the hourly and per-minute aggregates and the hourly
histograms leave together. Chunk by chunk (oldest first, ``--chunk`` decisions), in one transaction each: the chunk's
decisions, their outcomes and their group memberships are written to Parquet files (mode 0600, fsync'd) and only then
deleted; a chunk interrupted before its commit is archived again by the next run (the archive may hold a chunk twice,
the log never loses one). The aggregates older than the cutoff go next (the labelled counts of a day once the whole day
is past it); then the monthly partitions wholly before the cutoff (empty by then) are dropped and the months ahead
created (``pg_partitions``). A decision replayed into a dropped month lands in the default partition and expires with
the next run, archived like the others. Retention is a setting (``LOG_RETENTION_DAYS``, default 762 days: Regulation B
keeps adverse-action records 25 months). Exit status 0, and one JSON line saying what was archived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq

from core.private_files import PRIVATE_FILE_MODE, private_dir
from core.settings import Settings
from prediction_log.files.retention import expire_days
from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres import groups, outcomes
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import labelled as pg_labelled
from prediction_log.postgres import partitions as pg_partitions
from prediction_log.postgres.store import SQL_COLUMNS, TABLE
from prediction_log.records import COLUMNS, from_rows
from prediction_log.stores import file_log_dir

CHUNK = 50_000


def cutoff_for(keep_days: int, now: datetime | None = None) -> datetime:
    """The start of the UTC hour ``keep_days`` ago: older decisions expire."""
    moment = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _write_private(table: pa.Table, path: Path) -> None:
    """A Parquet file readable by this user only, on disk before the rows it holds are deleted."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE), "wb") as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())


async def _archive_chunk(
    conn: asyncpg.Connection, cutoff: datetime, chunk: int, archive: Path, related_tables: list[str]
) -> int:
    """One chunk of expired decisions (with their outcomes and groups) archived and deleted; how many."""
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT id, {', '.join(SQL_COLUMNS)} FROM {TABLE} WHERE ts < $1 ORDER BY ts, id LIMIT $2 FOR UPDATE",
            cutoff,
            chunk,
        )
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        request_ids = [r["request_id"] for r in rows]
        block = from_rows(dict(zip(COLUMNS, tuple(r)[1:])) for r in rows)
        stem = f"{rows[0]['ts']:%Y%m%dT%H%M%S}-{ids[0]}"
        _write_private(pa.Table.from_batches([block]), archive / f"predictions-{stem}.parquet")
        for table in related_tables:
            related = await conn.fetch(f"SELECT * FROM {table} WHERE request_id = ANY($1::text[])", request_ids)
            if related:
                _write_private(pa.Table.from_pylist([dict(r) for r in related]), archive / f"{table}-{stem}.parquet")
                await conn.execute(f"DELETE FROM {table} WHERE request_id = ANY($1::text[])", request_ids)
        await conn.execute(f"DELETE FROM {TABLE} WHERE id = ANY($1::bigint[])", ids)
    return len(rows)


async def expire(
    dsn: str, keep_days: int, archive: Path, chunk: int = CHUNK, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Archive and delete what is older than the cutoff; what was done (or, with ``dry_run``, would be)."""
    cutoff = cutoff_for(keep_days, now)
    conn = await asyncpg.connect(dsn)
    try:
        expired = int(await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE ts < $1", cutoff))
        report: dict[str, Any] = {
            "cutoff": cutoff.isoformat(),
            "keep_days": keep_days,
            "expired": expired,
            "archived": 0,
            "archive_dir": str(archive),
            "dry_run": dry_run,
        }
        if dry_run:
            return report
        private_dir(archive)
        related = [
            t for t in (outcomes.TABLE, groups.TABLE) if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", t)
        ]
        while done := await _archive_chunk(conn, cutoff, chunk, archive, related):
            report["archived"] += done
        for table in (*pg_aggregates.TABLES.values(), pg_histograms.TABLE):
            await conn.execute(f"DELETE FROM {table} WHERE bucket < $1", cutoff)
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", pg_labelled.TABLE):  # whole days only
            await conn.execute(f"DELETE FROM {pg_labelled.TABLE} WHERE day + interval '1 day' <= $1", cutoff)
        if await pg_partitions.is_partitioned(conn, TABLE):  # months now empty go, the months ahead are made
            report["partitions_dropped"] = await pg_partitions.drop_expired(conn, TABLE, cutoff)
            report["partitions_created"] = await pg_partitions.ensure_partitions(
                conn, TABLE, now or datetime.now(UTC), back=0
            )
        return report
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    settings = Settings()
    parser.add_argument(
        "--keep-days",
        type=int,
        default=settings.log_retention_days,
        help="decisions older than this expire (default LOG_RETENTION_DAYS)",
    )
    parser.add_argument("--archive-dir", type=Path, default=settings.data_dir / "archive")
    parser.add_argument(
        "--database-url",
        default=settings.database_url,
        help="the tables' owner (DATABASE_URL); without it, the file log in DATA_DIR",
    )
    parser.add_argument("--chunk", type=int, default=CHUNK, help="decisions archived and deleted per transaction")
    parser.add_argument("--dry-run", action="store_true", help="count what would expire, change nothing")
    args = parser.parse_args(argv)
    if args.keep_days < 1 or args.chunk < 1:
        parser.error("--keep-days and --chunk must be at least 1")
    if args.database_url:
        report = asyncio.run(expire(args.database_url, args.keep_days, args.archive_dir, args.chunk, args.dry_run))
    else:
        cutoff = cutoff_for(args.keep_days)
        report = {
            "cutoff": cutoff.isoformat(),
            "keep_days": args.keep_days,
            "archive_dir": str(args.archive_dir),
            "dry_run": args.dry_run,
            "log": str(file_log_dir(settings)),
            **expire_days(file_log_dir(settings), cutoff, args.archive_dir, args.dry_run),
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
