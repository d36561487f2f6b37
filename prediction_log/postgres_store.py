"""PostgreSQL store: asyncpg pool, idempotent batched COPY, typed ``predictions`` table."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from prediction_log.query import LogQuery
from prediction_log.records import COLUMNS, SQL_TYPES, Record, as_dict

TABLE = "predictions"
SQL_COLUMNS: tuple[str, ...] = tuple(c.lower() for c in COLUMNS)
"""Unquoted lower-case identifiers in SQL; rows map back to ``COLUMNS`` by position."""
_COLS = ", ".join(SQL_COLUMNS)
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('predictions_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
    *[f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {c.lower()} {SQL_TYPES[c]}" for c in COLUMNS],
    f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_request_id_key ON {TABLE} (request_id)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_ts_idx ON {TABLE} (ts DESC)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_decision_ts_idx ON {TABLE} (credit_decision, ts DESC)",
]
_STAGE = f"CREATE TEMP TABLE {TABLE}_stage ON COMMIT DELETE ROWS AS SELECT {_COLS} FROM {TABLE} WITH NO DATA"
_MERGE = f"INSERT INTO {TABLE} ({_COLS}) SELECT {_COLS} FROM {TABLE}_stage ON CONFLICT (request_id) DO NOTHING"
_INSERT_ONE = (f"INSERT INTO {TABLE} ({_COLS}) VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
               "ON CONFLICT (request_id) DO NOTHING")

DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""Errors that refuse rows (not the connection): retried row by row."""


async def ensure_schema(conn: asyncpg.Connection) -> None:
    """Create or migrate the table and its indexes; safe to run concurrently and repeatedly."""
    async with conn.transaction():
        for statement in SCHEMA_SQL:
            await conn.execute(statement)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb as Python objects (the ``explanation`` column; binary, as COPY needs); the staging table."""
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda v: b"\x01" + orjson.dumps(v), decoder=lambda b: orjson.loads(b[1:]))
    await conn.execute(_STAGE)


class PostgresStore:
    name = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, timeout: float = 5.0) -> "PostgresStore":
        """Open a pool (schema ensured, staging table per connection)."""
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await ensure_schema(conn)
        finally:
            await conn.close()

        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=_init_connection, timeout=timeout,
                                         command_timeout=30)
        return cls(pool)

    async def insert(self, records: list[Record]) -> int:
        """COPY into the staging table, then merge; duplicates (request_id) are skipped."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(f"{TABLE}_stage", records=records, columns=SQL_COLUMNS)
            status = await conn.execute(_MERGE)
        return int(status.split()[-1])

    async def insert_one(self, record: Record) -> int:
        async with self.pool.acquire() as conn:
            status = await conn.execute(_INSERT_ONE, *record)
        return int(status.split()[-1])

    async def replay(self, records: list[Record]) -> int:
        return await self.insert(records)

    async def query(self, q: LogQuery) -> list[dict]:
        """Newest-first page of records matching ``q``."""
        where, args = [], []
        for clause, value in (("ts >= ${}", q.since), ("ts < ${}", q.until), ("credit_decision = ${}", q.decision)):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        sql = (f"SELECT {_COLS} FROM {TABLE} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY ts DESC, id DESC LIMIT {q.limit} OFFSET {q.offset}")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [as_dict(tuple(r)) for r in rows]

    async def records_between(self, since: datetime | None, until: datetime | None) -> list[Record]:
        """Every record with ``since <= ts < until``, oldest first (monitoring windows)."""
        sql = (f"SELECT {_COLS} FROM {TABLE} WHERE ($1::timestamptz IS NULL OR ts >= $1) "
               "AND ($2::timestamptz IS NULL OR ts < $2) ORDER BY ts, id")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, since, until)
        return [tuple(r) for r in rows]

    async def count(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(f"SELECT count(*) FROM {TABLE}"))

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        await self.pool.close()
