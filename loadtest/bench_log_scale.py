"""What the log's reads cost at a lender's scale: N decisions over 30 days in PostgreSQL, read by the README's server.

    uv run python -m loadtest.bench_log_scale --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --decisions 5000000

How the decisions are made: a template of ``--template`` control decisions is scored and written by the project's own
backfill (``monitoring.traffic backfill --outcomes``: real model, real store, an outcome each from the generator's known
default probability); then SQL copies it into ``predictions`` day by day over the last 30 days, one ``INSERT … SELECT``
of at most a template per statement, each copy with new request_ids and evenly spaced timestamps, through the log's own
trigger (so the aggregates are kept exactly as live writes keep them); 20 % of the decisions older than a day get their
template row's outcome. Then our server starts on the database (the README's command) and the reads are timed:
``/predictions`` first page and a deep page (keyset cursor half-way through the log), ``/predictions/stats``,
``/predictions/summary`` for 24 h and 7 days (what the dashboard's Monitoring page reads, and the page itself rendered
signed in), ``/performance`` over 90 days (with the peak RSS of the server's largest process), ``/fairness`` over 7 days
(every decision posted a group of ``segment``), and the drift report over
7 days (wall time and peak RSS of the command; the baseline's bins registered before the decisions are written, so its
PSI reads the histograms of all of them). Writes JSON to ``--out``; the database is dropped afterwards unless
``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil
from streamlit.testing.v1 import AppTest

from core.artifacts import resolve_model_dir
from core.settings import PROJECT_ROOT, get_settings
from deployments.challenger_report import comparison
from loadtest.bench_throughput import _database
from loadtest.server_process import ServerConfig, ServerProcess
from models.baseline import load_baseline
from prediction_log.histograms import drift_bins
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres import groups, outcomes
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import schema as pg_schema
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres.store import SQL_COLUMNS, TABLE, PostgresStore

API_KEY = "bench-" + os.urandom(8).hex()
DAYS = 30
LABELLED_EVERY = 5
"""One decision in five older than a day has an outcome (the issue's 20 %)."""
_COPIED = [c for c in SQL_COLUMNS if c not in ("request_id", "ts")]


async def _schema(dsn: str) -> None:
    store = await PostgresStore.connect(dsn)
    try:
        await pg_schema.ensure_tables(store)
    finally:
        await store.close()


async def counting_for(dsn: str, days: int) -> None:
    """The schema, and the baseline's PSI bins registered ``days`` ago: the log counts every decision the benchmark
    writes into them, as a server that has been running that long has (``pg_histograms``)."""
    store = await PostgresStore.connect(dsn)
    try:
        async with store.pool.acquire() as conn:
            await pg_histograms.register(conn, drift_bins(load_baseline(resolve_model_dir(None)).frame), 60)
            await conn.execute(
                f"UPDATE {pg_histograms.BINS_TABLE} SET registered_at = now() - $1::interval "
                "WHERE registered_at > '-infinity'",
                timedelta(days=days),
            )
    finally:
        await store.close()


def template(dsn: str, rows: int) -> None:
    """The project's backfill: ``rows`` scored control decisions, each with its outcome."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.traffic",
            "backfill",
            "--scenario",
            "control",
            "--no-ramp",
            "--rows",
            str(rows),
            "--days",
            "1",
            "--outcomes",
            "--no-progress",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": dsn, "DATA_DIR": tempfile.mkdtemp(prefix="bls-")},
        stdout=subprocess.DEVNULL,
    )
    asyncio.run(_schema(dsn))


async def generate(dsn: str, decisions: int, template_rows: int, end: datetime, shadow: bool) -> dict[str, Any]:
    """``decisions`` copies of the template over the ``DAYS`` days before ``end``, outcomes for a fifth of the
    days before the last (``shadow``: every decision also scored by a challenger, its score within ±10 % of the
    champion's); returns counts and seconds."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(
            "CREATE UNLOGGED TABLE template AS SELECT (row_number() OVER (ORDER BY random()) - 1)::int AS rn, "
            f"{', '.join('p.' + c for c in _COPIED)}, o.defaulted FROM {TABLE} p JOIN {outcomes.TABLE} o "
            "USING (request_id)"
        )
        await conn.execute(
            f"TRUNCATE {TABLE}, {outcomes.TABLE}, {groups.TABLE}, decision_minutes, decision_hours, labelled_days, "
            f"{pg_scored.TABLE}, {pg_fairness_days.TABLE}, {pg_histograms.TABLE}"
        )
        if shadow:
            await conn.execute(
                "UPDATE template SET challenger_version = 'shadow-bench', challenger_probability = "
                "least(1.0, probability_default * (0.9 + 0.2 * random())), challenger_decision = 'approved'"
            )
            await conn.execute(
                "UPDATE template SET challenger_decision = 'denied' WHERE challenger_probability >= threshold"
            )
        per_day = decisions // DAYS
        step_us = 86_400_000_000 / per_day
        request_id = "lpad(to_hex($1::int), 4, '0') || lpad(to_hex($2::int), 8, '0') || lpad(to_hex(t.rn), 20, '0')"
        insert = (
            f"INSERT INTO {TABLE} (request_id, ts, {', '.join(_COPIED)}) SELECT {request_id}, "
            f"$3::timestamptz + (($2::bigint * {template_rows} + t.rn) * {step_us}) * interval '1 microsecond', "
            f"{', '.join('t.' + c for c in _COPIED)} FROM template t WHERE t.rn < $4"
        )
        member = (
            f"INSERT INTO {groups.TABLE} (request_id, attribute, group_name) SELECT {request_id}, 'segment', "
            f"CASE WHEN t.rn % 5 < 2 THEN 'B' ELSE 'A' END FROM template t WHERE t.rn < $4 "
            "AND $3::timestamptz IS NOT NULL"   # the day's start: the statement takes the insert's arguments
        )
        label = (
            f"INSERT INTO {outcomes.TABLE} (request_id, defaulted, observed_at) SELECT {request_id}, t.defaulted, "
            f"$3::timestamptz FROM template t WHERE t.rn < $4 AND t.rn % {LABELLED_EVERY} = 0"
        )
        written = labelled = 0
        labelling_s = 0.0
        for day in range(DAYS):
            day_start = end - timedelta(days=DAYS - day)
            for copy in range((per_day + template_rows - 1) // template_rows):
                rows = min(template_rows, per_day - copy * template_rows)
                written += int((await conn.execute(insert, day, copy, day_start, rows)).split()[-1])
                await conn.execute(member, day, copy, day_start, rows)
                if day < DAYS - 1:
                    began = time.monotonic()
                    labelled += int((await conn.execute(label, day, copy, end, rows)).split()[-1])
                    labelling_s += time.monotonic() - began
            print(
                f"day {day + 1}/{DAYS}: {written:,} decisions, {labelled:,} outcomes, "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
        await conn.execute("DROP TABLE template")
        analyzed = time.monotonic()
        await conn.execute("VACUUM ANALYZE")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        return {
            "decisions": written,
            "outcomes": labelled,
            "generate_s": round(analyzed - started, 1),
            "of_which_outcomes_s": round(labelling_s, 1),
            "vacuum_analyze_s": round(time.monotonic() - analyzed, 1),
            "database_bytes": size,
        }
    finally:
        await conn.close()


async def kept(dsn: str) -> tuple[datetime, dict[str, Any]]:
    """The end of a kept database's 30 days (the hour after its newest decision) and its counts."""
    conn = await asyncpg.connect(dsn)
    try:
        end = await conn.fetchval(f"SELECT date_trunc('hour', max(ts)) + interval '1 hour' FROM {TABLE}")
        counts = {
            "decisions": int(await conn.fetchval("SELECT sum(decisions) FROM decision_hours")),
            "outcomes": await conn.fetchval(f"SELECT count(*) FROM {outcomes.TABLE}"),
            "database_bytes": await conn.fetchval("SELECT pg_database_size(current_database())"),
        }
        return end, counts
    finally:
        await conn.close()


def timed(client: httpx.Client, path: str, params: dict[str, Any], repeats: int) -> tuple[dict[str, Any], Any]:
    """Seconds of a first GET (cold: reported, not hidden), then median, p99 and max of ``repeats`` more."""
    started = time.perf_counter()
    client.get(path, params=params).raise_for_status()
    first = time.perf_counter() - started
    seconds, body = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path, params=params)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
    ordered = sorted(seconds)
    return {
        "first_s": round(first, 4),
        "median_s": round(statistics.median(seconds), 4),
        "p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 4),
        "max_s": round(ordered[-1], 4),
        "repeats": repeats,
    }, body


class PeakRss:
    """The largest RSS each Serve replica on this machine reached while in use (sampled every 50 ms): Ray's
    processes are not the server process's children (``ray start`` detaches them)."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for process in psutil.process_iter():
                try:
                    title, rss = " ".join(process.cmdline()), process.memory_info().rss
                except psutil.Error:
                    continue
                if "ServeReplica" in title:
                    name = title.split()[0].rsplit(":", 1)[-1]
                    self.peaks[name] = max(rss, self.peaks.get(name, 0))
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reads(server: ServerProcess, end: datetime, repeats: int, shadow: bool) -> dict[str, Any]:
    """Every read the issue names, timed through the server."""
    results: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=600, headers={"X-API-Key": API_KEY}) as client:
        results["predictions_first_page"], page = timed(client, "/predictions", {"limit": 100}, repeats)
        middle = (end - timedelta(days=DAYS / 2)).isoformat()
        cursor = client.get("/predictions", params={"limit": 1, "until": middle}).json()["next_cursor"]
        results["predictions_deep_page"], _ = timed(client, "/predictions", {"limit": 100, "cursor": cursor}, repeats)
        results["predictions_deep_page"]["cursor"] = cursor
        results["predictions_stats"], stats = timed(client, "/predictions/stats", {}, repeats)
        results["predictions_stats"]["records_in_store"] = stats.get("records_in_store")
        for name, days in (("summary_24h", 1), ("summary_7d", 7)):
            since = (end - timedelta(days=days)).isoformat()
            results[name], summary = timed(client, "/predictions/summary", {"since": since}, repeats)
            results[name]["decisions"] = summary["decisions"]
        since = (end - timedelta(days=90)).isoformat()
        with PeakRss() as peak:
            results["performance_90d"], body = timed(client, "/performance", {"since": since}, max(1, repeats // 20))
        results["performance_90d"].update(labelled=body["labelled"], replica_peak_rss_bytes=peak.peaks)
        since = (end - timedelta(days=7)).isoformat()
        with PeakRss() as peak:
            results["fairness_7d"], body = timed(client, "/fairness", {"since": since, "until": end.isoformat()},
                                                 max(1, repeats // 20))
        results["fairness_7d"].update(decisions=body["decisions"], replica_peak_rss_bytes=peak.peaks)
        if shadow:
            with PeakRss() as peak:
                results["challenger_7d"], body = timed(client, "/challenger", {"since": since}, max(1, repeats // 20))
            results["challenger_7d"].update(shadowed=body["shadowed"], replica_peak_rss_bytes=peak.peaks)
    return results


async def challenger_from_rows(dsn: str, since: datetime) -> dict[str, Any]:
    """The comparison as it was made before the counts: the window's shadowed rows fetched into this process."""
    store = await PostgresStore.connect(dsn)
    started = time.perf_counter()
    try:  # its memory is not reported: this process's RSS reuses what earlier steps freed, so it would not show
        report = comparison(await outcomes.PostgresOutcomes(store).shadowed(since, None))
        return {"seconds": round(time.perf_counter() - started, 2), "shadowed": report["shadowed"]}
    except Exception as error:  # the fetch can outlast the store's read timeout: that is the finding
        return {"seconds": round(time.perf_counter() - started, 2), "error": repr(error)}
    finally:
        await store.close()


def dashboard_monitoring(url: str) -> dict[str, Any]:
    """The dashboard's Monitoring page run as a visitor runs it (Streamlit's AppTest, signed in): seconds to render
    the default 24-hour window, then the 7-day one, and the "Decisions" each shows."""
    os.environ["API_URL"] = url  # read by the page's settings, in this process
    get_settings.cache_clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "views" / "monitoring.py"), default_timeout=120).run()
    at.text_input[0].input(API_KEY)
    results = {}
    for window, act in (
        ("24 hours", lambda: at.button[0].click().run()),
        ("7 days", lambda: at.selectbox[0].select("7 days").run()),
    ):
        started = time.perf_counter()
        act()
        shown = {m.label: m.value for m in at.metric}
        results[window] = {
            "seconds": round(time.perf_counter() - started, 3),
            "decisions": shown.get("Decisions"),
            "exception": [str(e.value) for e in at.exception],
        }
    return results


def drift_report(dsn: str, reports: Path) -> dict[str, Any]:
    """The README's drift command over 7 days under ``/usr/bin/time -v``: wall seconds and peak RSS."""
    started = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "monitoring.drift_report", "--days", "7", "--out", str(reports)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": dsn, "DATA_DIR": str(reports)},
    )
    rss_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    first = done.stdout.splitlines()[0] if done.stdout else done.stderr[-500:]
    return {
        "exit": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_bytes": int(rss_kb.group(1)) * 1024 if rss_kb else None,
        "said": first,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--decisions", type=int, default=5_000_000)
    parser.add_argument("--template", type=int, default=100_000, help="scored decisions copied to make the rest")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="every decision also scored by a shadow challenger; times /challenger over 7 days",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is in the JSON)")
    parser.add_argument("--reuse", metavar="DATABASE", help="time the reads on a database kept by --keep")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    out = args.out or PROJECT_ROOT / "reports" / f"log_scale_{args.decisions}.json"

    name = args.reuse or f"bench_log_scale_{os.getpid()}"
    keep = args.keep or bool(args.reuse)
    dsn = (
        urlunsplit(urlsplit(args.database_url)._replace(path=f"/{name}"))
        if args.reuse
        else asyncio.run(_database(args.database_url, name, create=True))
    )
    report: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cores": os.cpu_count(),
        "database": name if keep else None,
    }
    try:
        if args.reuse:
            end, report["store"] = asyncio.run(kept(dsn))
        else:
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            asyncio.run(counting_for(dsn, DAYS + 1))
            template(dsn, args.template)
            report["store"] = asyncio.run(generate(dsn, args.decisions, args.template, end, args.shadow))
        print(json.dumps(report["store"]), flush=True)
        with ServerProcess(
            ServerConfig("log-scale"),
            env={"API_KEY": API_KEY, "DATABASE_URL": dsn, "DATA_DIR": tempfile.mkdtemp(prefix="bls-")},
        ) as server:
            report["reads"] = reads(server, end, args.repeats, args.shadow)
            report["dashboard_monitoring"] = dashboard_monitoring(server.url)
        report["drift_report_7d"] = drift_report(dsn, Path(tempfile.mkdtemp(prefix="bls-reports-")))
        if args.shadow:
            report["challenger_7d_from_rows"] = asyncio.run(challenger_from_rows(dsn, end - timedelta(days=7)))
    finally:
        if not keep:
            asyncio.run(_database(args.database_url, name, create=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
