"""Seed PostgreSQL for demos and monitoring: the reference table and backfilled traffic.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m monitoring.seed_database

Creates (or replaces) ``reference_applicants`` from the active model's reference sample,
creates the ``predictions`` table if needed, and backfills ``--rows`` decisions over
``--days`` days: control traffic first, then the drift scenario ramping in.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg
import pandas as pd

from core.artifacts import REFERENCE_FILE, resolve_model_dir
from core.features import FEATURES
from core.settings import get_settings
from monitoring.scenarios import SCENARIOS, applicants
from monitoring.traffic import backfill_records, write_records
from prediction_log.records import SQL_TYPES

REFERENCE_TABLE = "reference_applicants"


async def seed_reference(dsn: str, model: str | None = None) -> int:
    """Replace the reference table with the model's reference sample; returns its row count."""
    frame = pd.read_csv(resolve_model_dir(model) / REFERENCE_FILE)
    columns = [f.name for f in FEATURES]
    types = ", ".join(f"{f.name.lower()} {SQL_TYPES[f.name]}" for f in FEATURES)
    rows = [tuple(int(v) if f.dtype == "int" else float(v) for f, v in zip(FEATURES, row))
            for row in frame[columns].itertuples(index=False)]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {REFERENCE_TABLE}")
            await conn.execute(f"CREATE TABLE {REFERENCE_TABLE} ({types})")
            await conn.copy_records_to_table(REFERENCE_TABLE, records=rows,
                                             columns=[c.lower() for c in columns])
    finally:
        await conn.close()
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="backfilled decisions (half control, half drift)")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    dsn = get_settings().database_url
    if not dsn:
        raise SystemExit("DATABASE_URL is not set: the seed command fills PostgreSQL")

    reference = asyncio.run(seed_reference(dsn))
    half = args.rows // 2
    control = applicants(SCENARIOS["control"], half, args.seed, ramp=False)
    drift = applicants(SCENARIOS["drift"], args.rows - half, args.seed + 1, ramp=True)
    frame = pd.concat([control, drift], ignore_index=True)
    written = asyncio.run(write_records(backfill_records(frame, args.days)))
    print(f"{REFERENCE_TABLE}: {reference} rows; predictions: {written} backfilled over {args.days:g} days")


if __name__ == "__main__":
    main()
