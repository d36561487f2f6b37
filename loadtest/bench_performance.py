"""How fast ``GET /performance`` joins the log with outcomes in PostgreSQL: 1M decisions, 200k outcomes.

    uv run python -m loadtest.bench_performance --database-url postgresql://postgres@127.0.0.1:5432/postgres

Creates a fresh database on the server, backfills ``--decisions`` control decisions over 90 days (binary
COPY through the log's own store) and outcomes for ``--outcomes`` of them (through the outcome store),
starts our server on it (the README's command) and times ``GET /performance`` for the whole window, per
week and per day. Writes JSON to ``--out``; the database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from core.settings import PROJECT_ROOT
from loadtest.bench_throughput import _database
from loadtest.server_process import ServerConfig, ServerProcess

API_KEY = "bench-" + os.urandom(8).hex()


async def counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
        return {"predictions": await conn.fetchval("SELECT count(*) FROM predictions"),
                "outcomes": await conn.fetchval("SELECT count(*) FROM outcomes")}
    finally:
        await conn.close()


def fill(dsn: str, decisions: int, outcomes: int) -> dict[str, Any]:
    """The README's backfill command: control decisions over 90 days, outcomes for every n-th of them."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "monitoring.traffic", "backfill", "--scenario", "control", "--no-ramp",
                    "--rows", str(decisions), "--days", "90", "--outcomes", "--outcome-share",
                    str(outcomes / decisions), "--no-progress"], cwd=PROJECT_ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": dsn, "DATA_DIR": tempfile.mkdtemp(prefix="bp-")})
    return {**asyncio.run(counts(dsn)), "fill_s": round(time.monotonic() - started, 1)}


def time_queries(url: str, repeats: int) -> dict[str, Any]:
    since = (datetime.now(timezone.utc) - timedelta(days=91)).isoformat()
    results = {}
    with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": API_KEY}) as client:
        for by in ("week", "day"):
            seconds, labelled = [], None
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get("/performance", params={"since": since, "by": by})
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
                labelled = response.json()["labelled"]
            results[f"by_{by}"] = {"labelled": labelled, "median_s": round(statistics.median(seconds), 3),
                                   "max_s": round(max(seconds), 3), "runs": [round(s, 3) for s in seconds]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), required=False)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--outcomes", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "performance_query.json")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")

    name = f"bench_performance_{os.getpid()}"
    dsn = asyncio.run(_database(args.database_url, name, create=True))
    try:
        report: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(),
                                  "store": fill(dsn, args.decisions, args.outcomes)}
        with ServerProcess(ServerConfig("performance"), env={"API_KEY": API_KEY, "DATABASE_URL": dsn,
                                                             "DATA_DIR": tempfile.mkdtemp(prefix="bp-")}) as server:
            report["get_performance"] = time_queries(server.url, args.repeats)
    finally:
        asyncio.run(_database(args.database_url, name, create=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
