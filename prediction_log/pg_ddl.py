"""Applying a table's DDL, shared by the stores (the bottom of the PostgreSQL modules: it imports none of them)."""

from __future__ import annotations

from collections.abc import Sequence

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
