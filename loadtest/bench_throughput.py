"""Throughput benchmark in one command: our server against its yardsticks, same machine, same run.

    uv run python -m loadtest.bench_throughput [--duration 15] [--database-url postgresql://...]

1. ONNX Runtime alone on the same rows (one thread, blocks of 1,000): the model's own ceiling; beside it, per
   row on one thread, the reasons' attribution (``models/tree_tables.py``) and LightGBM's ``pred_contrib``.
2. A plain FastAPI + ONNX Runtime process without any logging (``loadtest/plain_server.py``), and the
   minimal Ray Serve app for the job (``loadtest/minimal_serve_app.py``: one FastAPI ingress deployment ×2
   with ONNX in-process, no micro-batching, no log) and the same shape as ours as Ray's docs teach it
   (``loadtest/minimal_split_app.py``: ingress ×2 → ``@serve.batch`` scorer, a handle call per request, no log),
   each started by the README's launcher.
3. Our server (``serve run`` of serve_config.yaml with serve.env) with the JSONL file log, and with
   PostgreSQL logging when a database URL is given (a fresh database is created and dropped), and then on the
   table as it was before monthly partitions and the triggers of the aggregates and histograms (what those cost
   the writes).

Each server gets wrk at 64 connections on ``/predict`` and 4 connections × 1,000-row bodies on
``/predict/batch`` (ours also on the Open Inference Protocol's ``/v2/models/credit/infer``, the same rows as one
``[1000, 10]`` tensor). During every load the CPU seconds of every process on the machine are summed
by role (ingress, scorer, log writer, Ray's metrics agent, HAProxy, PostgreSQL, ...), and after it
the log's record count is compared with the rows answered. Writes JSON to ``--out`` and prints a
Markdown table with our figures as fractions of the yardsticks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import psutil

from core.artifacts import ONNX_FILE, resolve_model_dir
from core.features import FEATURE_NAMES
from core.ports import free_port
from core.reference import reference_applicants, sample_applicants
from core.settings import PROJECT_ROOT
from loadtest.bench_serving import run_wrk
from loadtest.log_counts import settled_stats
from loadtest.server_process import ServerConfig, ServerProcess, wait_healthy
from models.loader import load_model
from models.onnx_classifier import OnnxBinaryClassifier
from prediction_log.postgres import aggregates as pg_aggregates
from prediction_log.postgres import fairness_days as pg_fairness_days
from prediction_log.postgres import groups, outcomes
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres import scored as pg_scored
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.store import SECONDARY_INDEXES, SQL_COLUMNS, TABLE, schema_sql

API_KEY = "bench-" + os.urandom(8).hex()
ROLES: tuple[tuple[str, str], ...] = (
    ("ServeReplica:credit:Ingress", "ingress"), ("ServeReplica:credit:Scorer", "scorer"),
    ("ServeReplica:credit:LogWriter", "log writer"), ("DashboardAgent", "metrics agent (ray::DashboardAgent)"),
    ("dashboard_agent", "metrics agent (ray::DashboardAgent)"), ("HAProxyManager", "ray::HAProxyManager"),
    ("haproxy", "haproxy"), ("ServeController", "ray::ServeController"), ("ProxyActor", "ray::ProxyActor"),
    ("postgres", "postgresql"), ("gcs_server", "ray core (gcs, raylet)"), ("raylet", "ray core (gcs, raylet)"),
    ("wrk", "wrk (load generator)"), ("plain_server", "plain server"),
)


def _role(process: psutil.Process) -> str:
    try:
        text = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        return "other"
    return next((role for needle, role in ROLES if needle in text), "other")


def _cpu_seconds() -> dict[int, tuple[str, float]]:
    seen = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            seen[process.pid] = (_role(process), times.user + times.system)
        except psutil.Error:
            continue
    return seen


def with_cpu(load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``load`` and add each role's CPU share (% of one core) over its duration."""
    before, started = _cpu_seconds(), time.monotonic()
    result = load()
    after, seconds = _cpu_seconds(), time.monotonic() - started
    shares: dict[str, float] = defaultdict(float)
    for pid, (role, cpu) in after.items():
        shares[role] += cpu - before.get(pid, (role, 0.0))[1]
    result["cpu_percent_of_a_core"] = {r: round(100 * s / seconds, 1) for r, s in
                                       sorted(shares.items(), key=lambda kv: -kv[1]) if s / seconds >= 0.005}
    result["cpu_percent_of_a_core"]["machine (2 cores = 200)"] = round(
        sum(shares.values()) * 100 / seconds, 1)
    return result


def onnx_alone(seconds: float = 5.0, block: int = 1000) -> dict[str, Any]:
    """Rows/s of ONNX Runtime on this model, one thread, on the reference sample's rows."""
    rows = reference_applicants().to_numpy(dtype=np.float64)
    blocks = [rows[i:i + block] for i in range(0, len(rows) - block + 1, block)]
    classifier = OnnxBinaryClassifier(resolve_model_dir(None) / ONNX_FILE)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for b in blocks:
            classifier.predict_proba(b)
            done += len(b)
    return {"rows_per_s": round(done / (time.perf_counter() - started)), "block_rows": block, "threads": 1}


def attribution_cost(rows_n: int = 4000, repeats: int = 5) -> dict[str, Any]:
    """µs per row on one thread: ONNX scoring, the reasons' tables, LightGBM's pred_contrib (the same rows)."""
    model = load_model(None)
    assert model.reasons is not None and model.reasons.tables is not None
    rows = reference_applicants().to_numpy(dtype=np.float64)[:rows_n]
    exact = rows.astype(np.float32).astype(np.float64)
    costs = {}
    for name, call, times in (("onnx_runtime", lambda: model.classifier.predict_proba(rows), repeats),
                              ("reason_tables", lambda: model.reasons.tables.contributions(exact), repeats),
                              ("lightgbm_pred_contrib", lambda: model.reasons.tree_shap(exact), 1)):
        call()
        started = time.perf_counter()
        for _ in range(times):
            call()
        costs[f"{name}_us_per_row"] = round((time.perf_counter() - started) / times / len(rows) * 1e6, 2)
    costs["tables_x_onnx"] = round(costs["reason_tables_us_per_row"] / costs["onnx_runtime_us_per_row"], 2)
    costs["pred_contrib_x_onnx"] = round(costs["lightgbm_pred_contrib_us_per_row"] / costs["onnx_runtime_us_per_row"],
                                         1)
    return costs


def tensor_body(applicants: list[dict[str, Any]]) -> str:
    """The Open Inference Protocol body of ``applicants``: one ``[n, 10]`` tensor (``deployments/http/tensors.py``)."""
    data = [[a[n] for n in FEATURE_NAMES] for a in applicants]
    return json.dumps({"inputs": [{"name": "applicants", "datatype": "FP32", "shape": [len(data), len(FEATURE_NAMES)],
                                   "data": data}]})


def load_runs(url: str, duration: int, batch_rows: int, tensors: bool = False) -> dict[str, Any]:
    """wrk on ``/predict`` and ``/predict/batch``; with ``tensors`` (our server) also on the Open Inference
    Protocol's ``infer``, the same rows as the batch bodies."""
    singles = [json.dumps(a) for a in sample_applicants(500, seed=1)]
    rows = [sample_applicants(batch_rows, seed=s) for s in range(4)]
    warm = run_wrk(url, "/predict", singles, 64, 3)
    single = with_cpu(lambda: run_wrk(url, "/predict", singles, 64, duration))
    batch = with_cpu(lambda: run_wrk(url, "/predict/batch", [json.dumps(r) for r in rows], 4, duration))
    batch["rows_per_s"] = round(batch["req_per_s"] * batch_rows, 1)
    runs = {"single": single, "batch": batch}
    if tensors:
        infer = with_cpu(lambda: run_wrk(url, "/v2/models/credit/infer", [tensor_body(r) for r in rows], 4, duration))
        infer["rows_per_s"] = round(infer["req_per_s"] * batch_rows, 1)
        runs["infer"] = infer
    answered = sum(r["requests"] - r["non_2xx"] for r in (warm, single)) + \
        sum(r["requests"] - r["non_2xx"] for name, r in runs.items() if name != "single") * batch_rows
    return runs | {"rows_answered_2xx": answered}


def plain_server(duration: int, batch_rows: int) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "loadtest.plain_server:app", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning", "--no-access-log"],
                               cwd=PROJECT_ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 60, alive=lambda: process.poll() is None)
        return load_runs(url, duration, batch_rows)
    finally:
        process.terminate()
        process.wait(30)


VARIANTS: dict[str, tuple[dict[str, str], dict[str, dict[str, Any]]]] = {
    "HAProxy off (Serve's Python proxy)": ({"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"},
                                           {}),
    "HAProxy with 4 threads (Ray's default)": ({"RAY_SERVE_HAPROXY_NBTHREAD": "4"}, {}),
    "HAProxy metrics on (Ray's default)": ({"RAY_SERVE_HAPROXY_METRICS_ENABLED": "1"}, {}),
    "1 ingress replica": ({}, {"Ingress": {"num_replicas": 1}}),
    "shadow challenger (the same model)": ({}, {"Challenger": {"user_config": {"mode": "shadow",
                                                                              "model": "latest"}}}),
    "reasons for denials off": ({}, {"Scorer": {"user_config": {"reasons_for_denials": False}}}),
    "ingress micro-batching off (batch size 1)": ({}, {"Ingress": {"user_config": {"max_batch_size": 1}}}),
}
"""Run one at a time against the file-log baseline (``--variants``): env overrides, deployment overrides.
The first are the suspects of the CPU hunt (what each Ray/HAProxy setting costs), the last what shadow
scoring costs."""


def minimal_serve_app(duration: int, batch_rows: int, log: Path) -> dict[str, Any]:
    """The simplest Ray Serve app for the job (``loadtest/minimal_serve_app.py``), run by the README's launcher."""
    config = ServerConfig("minimal Ray Serve app", import_path="loadtest.minimal_serve_app:app")
    with ServerProcess(config, env={"DATABASE_URL": ""}, log=log) as server:
        return load_runs(server.url, duration, batch_rows)


def minimal_split_app(duration: int, batch_rows: int, log: Path) -> dict[str, Any]:
    """Our shape as Ray's docs teach it (``loadtest/minimal_split_app.py``), run by the README's launcher."""
    config = ServerConfig("minimal split Ray Serve app", import_path="loadtest.minimal_split_app:app")
    with ServerProcess(config, env={"DATABASE_URL": ""}, log=log) as server:
        return load_runs(server.url, duration, batch_rows)


def our_server(name: str, env: dict[str, str], duration: int, batch_rows: int, log: Path,
               deployments: dict[str, dict[str, Any]] | None = None,
               prepare: Callable[[], None] | None = None, restore: Callable[[], None] | None = None
               ) -> dict[str, Any]:
    """One fresh server under both loads; ``prepare`` runs once it is up (a diagnostic change to its store),
    ``restore`` after the loads, before the log is counted."""
    with ServerProcess(ServerConfig(name, deployments=deployments or {}), env=env, log=log) as server:
        if prepare is not None:
            prepare()
        before = settled_stats(server.url, API_KEY)
        runs = load_runs(server.url, duration, batch_rows, tensors=True)
        if restore is not None:
            time.sleep(2)   # the last flushes (every ~50 ms) land first
            restore()
        after = settled_stats(server.url, API_KEY, timeout_s=60)
    logged = after["records_in_store"] - before["records_in_store"] if before and after else None
    runs["log"] = {"backend": after["backend"] if after else None, "records_logged": logged,
                   "rows_answered_2xx_counted_by_wrk": runs.pop("rows_answered_2xx"),
                   "note": "wrk stops counting with requests in flight; those are answered and logged too",
                   "spool_records": after["spool_records"] if after else None}
    return runs


async def _database(dsn: str, name: str, create: bool) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        if create:
            await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_secondary_indexes(dsn: str) -> Callable[[], None]:
    """The PostgreSQL diagnostic: the table's secondary indexes dropped once the server has made them. Never in
    production (they carry replay idempotency and the reads): it measures their cost."""
    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for index in SECONDARY_INDEXES:
                await conn.execute(f"DROP INDEX IF EXISTS {index}")
        finally:
            await conn.close()

    return lambda: asyncio.run(drop())


def aggregates_trigger(dsn: str, on: bool) -> Callable[[], None]:
    """The counting of the aggregates and the histograms (their triggers, the writer's function) dropped once the
    server has made them (the writes as they were before them), or made again after the load: they count the rows
    already there once, so the log's count is read as usual."""
    async def change() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for module in (pg_aggregates, pg_histograms, pg_scored):
                if on:
                    await module.ensure_schema(conn, TABLE)
                else:
                    for statement in module.stop_counting_sql(TABLE):
                        await conn.execute(statement)
            if on:
                await pg_fairness_days.ensure_schema(conn, TABLE, outcomes.TABLE, groups.TABLE)
            else:
                for statement in pg_fairness_days.stop_counting_sql(TABLE, outcomes.TABLE, groups.TABLE):
                    await conn.execute(statement)
        finally:
            await conn.close()

    return lambda: asyncio.run(change())


async def _plain_table(dsn: str) -> None:
    """The log's table as an earlier version made it, unpartitioned (the server keeps a table it finds)."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_schema(conn, schema_sql(partitioned=False), TABLE, SQL_COLUMNS)
    finally:
        await conn.close()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def summary(report: dict[str, Any]) -> str:
    plain, ort_rows = report["plain_fastapi_onnx_no_log"], report["onnx_runtime_alone"]["rows_per_s"]
    minimal, split = report["minimal_ray_serve_app_no_log"], report["minimal_split_serve_app_no_log"]
    lines = ["| server | /predict req/s | p99 ms | × minimal Serve app | × minimal split app | × plain | "
             "/predict/batch rows/s | p99 ms | × ONNX alone | metrics agent % core | non-2xx | logged = answered |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, run in [("plain FastAPI + ONNX Runtime, no log", plain),
                      ("minimal Ray Serve app (2 replicas, ONNX in-process), no log", minimal),
                      ("minimal split Serve app (ingress ×2 → @serve.batch scorer), no log", split),
                      *report["ours"].items()]:
        single, batch = run["single"], run["batch"]
        agent = batch["cpu_percent_of_a_core"].get("metrics agent (ray::DashboardAgent)", 0.0)
        log = run.get("log")
        check = "—" if log is None else f"{log['records_logged']} / {log['rows_answered_2xx_counted_by_wrk']}"
        lines.append(f"| {name} | {single['req_per_s']:,.0f} | {single['p99_ms']:.0f} | "
                     f"{_ratio(single['req_per_s'], minimal['single']['req_per_s'])} | "
                     f"{_ratio(single['req_per_s'], split['single']['req_per_s'])} | "
                     f"{_ratio(single['req_per_s'], plain['single']['req_per_s'])} | {batch['rows_per_s']:,.0f} | "
                     f"{batch['p99_ms']:.0f} | {_ratio(batch['rows_per_s'], ort_rows)} | {agent} | "
                     f"{single['non_2xx'] + batch['non_2xx']} | {check} |")
    lines += ["", "| server | Open Inference Protocol infer rows/s | p99 ms | × /predict/batch |",
              "|---|---:|---:|---:|"]
    for name, run in report["ours"].items():
        infer = run["infer"]
        lines.append(f"| {name} | {infer['rows_per_s']:,.0f} | {infer['p99_ms']:.0f} | "
                     f"{_ratio(infer['rows_per_s'], run['batch']['rows_per_s'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="PostgreSQL server for the logging run (a fresh database is created on it)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "throughput.json")
    parser.add_argument("--variants", action="store_true",
                        help="also run the file-log server with each of VARIANTS in turn")
    parser.add_argument("--variant", action="append", default=[], metavar="TEXT",
                        help="run only the VARIANTS whose name contains TEXT (repeatable; implies --variants)")
    args = parser.parse_args()
    args.variants = args.variants or bool(args.variant)
    chosen = {name: v for name, v in VARIANTS.items() if not args.variant or any(t in name for t in args.variant)}

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    report: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(),
                              "duration_s": args.duration, "onnx_runtime_alone": onnx_alone(),
                              "attribution_one_thread": attribution_cost()}
    report["plain_fastapi_onnx_no_log"] = plain_server(args.duration, args.batch_rows)
    report["minimal_ray_serve_app_no_log"] = minimal_serve_app(args.duration, args.batch_rows, work / "minimal.log")
    report["minimal_split_serve_app_no_log"] = minimal_split_app(args.duration, args.batch_rows, work / "split.log")
    report["ours"] = {}
    base = {"API_KEY": API_KEY}
    report["ours"]["ours, file log"] = our_server(
        "file log", base | {"DATA_DIR": str(work / "file"), "DATABASE_URL": ""}, args.duration, args.batch_rows,
        work / "file.log")
    if args.database_url:
        name = f"bench_scoring_{os.getpid()}"
        dsn = asyncio.run(_database(args.database_url, name, create=True))
        try:
            report["ours"]["ours, PostgreSQL log"] = our_server(
                "postgresql", base | {"DATA_DIR": str(work / "pg"), "DATABASE_URL": dsn}, args.duration,
                args.batch_rows, work / "pg.log")
        finally:
            asyncio.run(_database(args.database_url, name, create=False))
        dsn = asyncio.run(_database(args.database_url, name, create=True))
        try:   # what partitions and aggregates cost the writes: the same server on the table as it was before them
            asyncio.run(_plain_table(dsn))
            report["ours"]["PostgreSQL log, unpartitioned table without aggregates"] = our_server(
                "postgresql-unpartitioned", base | {"DATA_DIR": str(work / "pg-plain"), "DATABASE_URL": dsn},
                args.duration, args.batch_rows, work / "pg-plain.log", prepare=aggregates_trigger(dsn, on=False),
                restore=aggregates_trigger(dsn, on=True))
        finally:
            asyncio.run(_database(args.database_url, name, create=False))
        if args.variants and not args.variant:   # the database's largest suspect: index maintenance (fresh database)
            dsn = asyncio.run(_database(args.database_url, name, create=True))
            try:
                report["ours"]["PostgreSQL log, table without its secondary indexes (diagnostic)"] = our_server(
                    "postgresql-no-indexes", base | {"DATA_DIR": str(work / "pg-noidx"), "DATABASE_URL": dsn},
                    args.duration, args.batch_rows, work / "pg-noidx.log", prepare=drop_secondary_indexes(dsn))
            finally:
                asyncio.run(_database(args.database_url, name, create=False))
    if args.variants:
        for index, (name, (env, deployments)) in enumerate(chosen.items()):
            report["ours"][f"file log, {name}"] = our_server(
                name, base | env | {"DATA_DIR": str(work / f"s{index}"), "DATABASE_URL": ""}, args.duration,
                args.batch_rows, work / f"s{index}.log", deployments)
    report["table"] = summary(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["table"])
    print(f"\nfull report: {args.out}")


if __name__ == "__main__":
    main()
