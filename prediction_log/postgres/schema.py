"""The log's tables in PostgreSQL, and the least-privilege role the server connects as.

    python -m prediction_log.postgres.schema --owner-url-file OWNER_DSN_FILE --app-url-file APP_DSN_FILE

creates or migrates the log's tables (``log_tables``) and its aggregates as the owner, then creates (or re-passwords)
the role named in the app's DSN with only what the server needs: connect, ``SELECT``/``INSERT`` on its tables,
``SELECT`` on the aggregates (kept by triggers with the owner's rights, ``pg_aggregates``, ``pg_labelled``,
``pg_scored``, ``pg_fairness_days``, ``pg_histograms``; ``INSERT`` on its bins: monitoring registers the bins it
reads), temporary tables (its staging table). The server's own start then finds the schema in place and does not
need the right to change it (``apply_schema``). Run it before a new version's server on a big log: it counts the rows
and outcomes older than the aggregates' triggers once, without the server's 30 s statement limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres import groups, model_changes, monitoring_runs, outcomes
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import labelled as pg_labelled
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres import store as postgres_store


def log_tables() -> tuple[str, ...]:
    """The server's tables, as their stores name them."""
    return postgres_store.TABLE, outcomes.TABLE, groups.TABLE, model_changes.TABLE, monitoring_runs.TABLE


async def ensure_tables(store: postgres_store.PostgresStore) -> None:
    """The tables beside the log (the log's own are made when ``store`` connects), with their aggregates."""
    await outcomes.PostgresOutcomes(store).ensure_schema()
    await groups.PostgresGroups(store).ensure_schema()
    await model_changes.PostgresModelChanges(store).ensure_schema()
    await monitoring_runs.PostgresMonitoringRuns(store).ensure_schema()


async def grant(owner_dsn: str, app_dsn: str) -> str:
    """Schema as the owner, then the app's role with its password from ``app_dsn``; returns the role."""
    parts = urlsplit(app_dsn)
    role, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not role or not password:
        raise SystemExit("the app's DSN must name a role and its password")
    store = await postgres_store.PostgresStore.connect(owner_dsn, statement_timeout_s=None)  # counts a big log once
    try:
        await ensure_tables(store)
        async with store.pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            quoted, literal, database = await conn.fetchrow(
                "SELECT quote_ident($1), quote_literal($2), quote_ident(current_database())", role, password
            )
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(f"{verb} ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}")
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {quoted}")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
            await conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {quoted}")
            await conn.execute(f"GRANT SELECT, INSERT ON {', '.join(log_tables())} TO {quoted}")
            counts = [*pg_aggregates.TABLES.values(), pg_labelled.TABLE, pg_histograms.TABLE, pg_scored.TABLE,
                      pg_fairness_days.TABLE]
            await conn.execute(f"GRANT SELECT ON {', '.join(counts)} TO {quoted}")
            await conn.execute(f"GRANT SELECT, INSERT ON {pg_histograms.BINS_TABLE} TO {quoted}")  # registers bins
            await conn.execute(f"GRANT EXECUTE ON FUNCTION {pg_histograms.ADD_SIGNATURE} TO {quoted}")  # adds counts
    finally:
        await store.close()
    return role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owner-url-file", type=Path, required=True, help="File holding the owner's DSN")
    parser.add_argument("--app-url-file", type=Path, required=True, help="File holding the server's DSN")
    args = parser.parse_args(argv)
    role = asyncio.run(grant(args.owner_url_file.read_text().strip(), args.app_url_file.read_text().strip()))
    print(
        f"schema ready; role {role}: SELECT, INSERT on {', '.join(log_tables())}; SELECT on "
        f"{', '.join(pg_aggregates.TABLES.values())}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
