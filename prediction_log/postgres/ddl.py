"""Applying a table's DDL, shared by the stores (the bottom of the PostgreSQL modules: it imports none of them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg


async def apply_schema(conn: asyncpg.Connection, statements: Sequence[str], table: str, columns: Sequence[str],
                       timeout_s: float | None = None) -> None:
    """Run the DDL (idempotent); a role without the right to change the table checks instead that it has
    every column, so a server connecting with least privilege starts against a schema its owner set up."""
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement, timeout=timeout_s)
    except asyncpg.InsufficientPrivilegeError:
        await conn.execute(f"SELECT {', '.join(columns)} FROM {table} LIMIT 0", timeout=timeout_s)


def counting_trigger(trigger: str, table: str, upserts: Callable[[str], Sequence[str]]) -> list[str]:
    """DDL of a statement trigger after inserts on ``table`` running ``upserts("stored")`` over the rows each
    statement stored (its transition table), with its owner's rights; when the trigger is created, ``upserts(table)``
    counts the rows already there once, under a lock that holds writers back for that moment."""
    def body(source: str) -> str:
        return "".join(f"\n    {statement};" for statement in upserts(source))

    return [
        f"""CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN{body("stored")}
  RETURN NULL;
END $$""",
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{trigger}' AND tgrelid = '{table}'::regclass) THEN
    LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
    CREATE TRIGGER {trigger} AFTER INSERT ON {table} REFERENCING NEW TABLE AS stored
      FOR EACH STATEMENT EXECUTE FUNCTION {trigger}();{body(table)}
  END IF;
END $$""",
    ]


class TableBeside:
    """A table kept beside the log in its database: ``SCHEMA_SQL`` applied on the log's write pool at first use
    (``apply_schema``), once per store object. Subclasses set ``TABLE``, ``SCHEMA_SQL`` and ``COLUMNS``."""

    TABLE: str
    SCHEMA_SQL: Sequence[str]
    COLUMNS: Sequence[str]

    def __init__(self, log: Any) -> None:
        self.log = log
        """The ``PostgresStore``: writes on its write pool, reads on its read pool."""
        self._schema_ready = False

    async def ensure_schema(self) -> None:
        if not self._schema_ready:
            async with self.log.writing() as conn:
                await apply_schema(conn, self.SCHEMA_SQL, self.TABLE, self.COLUMNS)
            self._schema_ready = True
