"""Monthly partitions of the PostgreSQL log: created ahead, a default partition for the rest, dropped when expired.

A new ``predictions`` table is partitioned by range of ``ts`` (declarative partitioning): one partition per UTC
month, named ``predictions_y2026m12``, from ``MONTHS_BACK`` months before the schema is set up to
``MONTHS_AHEAD`` after, and ``predictions_default`` for any other time (a backfill further back, a replay
into a range already dropped), so no insert ever fails for want of a partition. A record's partition is
fixed by its decision time, so a replayed duplicate meets its original in the same partition and the unique
(request_id, ts) index skips it. Partitions are created by whoever sets up the schema with the right to (the
owner: ``prediction_log.postgres.schema``, the retention command, the server when it owns the table); the
least-privilege role writes into those. The retention command drops a month once all of it is past the
cutoff and its rows are archived. A table created unpartitioned by an earlier version keeps working as is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg

MONTHS_BACK = 3
MONTHS_AHEAD = 12
logger = logging.getLogger(__name__)


def month_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


async def is_partitioned(conn: asyncpg.Connection, table: str) -> bool | None:
    """True for a partitioned table, False for a plain one, None when there is none yet."""
    kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", table)
    return None if kind is None else kind == "p"


async def ensure_partitions(conn: asyncpg.Connection, table: str, now: datetime, back: int = MONTHS_BACK,
                            ahead: int = MONTHS_AHEAD, timeout_s: float | None = None) -> list[str]:
    """The monthly partitions from ``back`` months before ``now`` to ``ahead`` after; the names created. A month
    the default partition already holds rows of is left there (creating it would fail), and so is every month
    when this role may not create tables."""
    created = []
    first = month_start(now)
    for offset in range(-back, ahead + 1):
        month = add_months(first, offset)
        name = partition_name(table, month)
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
            continue
        try:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM "
                               f"('{month.isoformat()}') TO ('{add_months(month, 1).isoformat()}')", timeout=timeout_s)
            created.append(name)
        except asyncpg.InsufficientPrivilegeError:
            return created
        except asyncpg.CheckViolationError:
            logger.warning("%s: the default partition holds rows of %s; they stay there", table, name)
    return created


DROP_LOCK_TIMEOUT = "10s"


async def drop_expired(conn: asyncpg.Connection, table: str, cutoff: datetime) -> list[str]:
    """Drop the monthly partitions whose whole month is before ``cutoff`` and that hold no row (the retention
    command archives and deletes expired rows first); the names dropped."""
    names = [r[0] for r in await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass($1) ORDER BY c.relname", table)]
    dropped = []
    for name in names:
        suffix = name.removeprefix(f"{table}_y")
        if name == suffix or "m" not in suffix:
            continue   # the default partition, or not one of ours
        year, month = suffix.split("m")
        end = add_months(datetime(int(year), int(month), 1, tzinfo=UTC), 1)
        if end <= cutoff and await _drop_if_empty(conn, table, name):
            dropped.append(name)
    return dropped


async def _drop_if_empty(conn: asyncpg.Connection, table: str, name: str) -> bool:
    """Check and drop under one lock of the parent: a row committed between the check and the drop (a replay into
    that month) would be dropped unarchived. Inserts wait the moment it takes; a lock not had within
    ``DROP_LOCK_TIMEOUT`` leaves the partition to the next run."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
                return False
            await conn.execute(f"DROP TABLE {name}")
            return True
    except asyncpg.LockNotAvailableError:
        return False
