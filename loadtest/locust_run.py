"""One headless Locust run: command line, pinning, figures from the locustfile's final summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT

LOCUSTFILE = PROJECT_ROOT / "loadtest" / "locustfile.py"
USER_CLASSES = {"single": "SingleRowUser", "batch": "BatchUser", "mixed": "MixedUser"}
ROWS_PER_REQUEST = {"/predict": 1, "/predict/batch": None}
"""Decisions per successful request by request name (None = the batch size); others carry none."""
SATURATED = 0.9
"""Locust using this share of the cores it may use is reported as the bottleneck."""


@dataclass(frozen=True)
class LocustRun:
    scenario: str
    users: int
    duration_s: int
    batch_size: int = 100
    processes: int = 1
    cpus: tuple[int, ...] | None = None
    """Pin Locust to these CPUs (``os.sched_setaffinity``); None = no pinning."""


def parse_summary(path: Path, batch_size: int) -> dict[str, Any]:
    """Per request name and aggregated: counts, failures, req/s, percentiles; decisions (rows) answered."""
    entries = json.loads(path.read_text())
    load = {k: entries[-1][k] for k in ("elapsed_s", "locust_cores", "machine_cores_busy")}
    seconds = max(load["elapsed_s"], 1e-3)
    endpoints, aggregated, decisions = {}, None, 0
    for entry in entries:
        figures = {"requests": entry["requests"], "failures": entry["failures"],
                   "req_per_s": round(entry["requests"] / seconds, 1),
                   **{k: entry[k] for k in ("p50_ms", "p95_ms", "p99_ms")}}
        if entry["name"] == "Aggregated":
            aggregated = figures
            continue
        endpoints[f"{entry['method']} {entry['name']}"] = figures
        if entry["name"] in ROWS_PER_REQUEST:
            per_request = ROWS_PER_REQUEST[entry["name"]] or batch_size
            decisions += (figures["requests"] - figures["failures"]) * per_request
    assert aggregated is not None, f"no Aggregated entry in {path}"
    return {"measured_s": round(seconds, 2), "load": load, "aggregated": aggregated, "endpoints": endpoints,
            "decisions_2xx": decisions,
            "rows_per_s": round(decisions / seconds, 1)}


def run_locust(run: LocustRun, host: str, out_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run Locust headless against ``host``; returns figures with the load generator's own CPU use."""
    stem = f"{run.scenario}-u{run.users}"
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
           "-u", str(run.users), "-r", str(max(run.users, 1)),
           "--stop-timeout", "10", "--only-summary", "--exit-code-on-error", "0",
           "--csv", str(out_dir / stem), "--html", str(out_dir / f"{stem}.html"), USER_CLASSES[run.scenario]]
    if run.processes > 1:
        cmd[5:5] = ["--processes", str(run.processes)]
    cpus = set(run.cpus) if run.cpus else None
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, **env, "LOADTEST_BATCH_SIZE": str(run.batch_size),
                               "LOADTEST_SUMMARY": str(out_dir / f"{stem}.json"),
                               "LOADTEST_DURATION": str(run.duration_s)},
                          preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    if done.returncode != 0:
        raise RuntimeError(f"locust failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = parse_summary(out_dir / f"{stem}.json", run.batch_size)
    load = figures.pop("load")
    allowed = min(len(cpus) if cpus else os.cpu_count() or 1, run.processes)
    return {
        "scenario": run.scenario, "users": run.users, "duration_s": run.duration_s,
        "batch_size": run.batch_size if run.scenario != "single" else None, **figures,
        "error_rate": round(figures["aggregated"]["failures"] / max(figures["aggregated"]["requests"], 1), 5),
        "load_generator": {"processes": run.processes, "cpus": sorted(cpus) if cpus else None,
                           "cpu_cores_used": round(load["locust_cores"], 2),
                           "saturated": load["locust_cores"] >= SATURATED * allowed},
        "machine_cpu_cores_busy": round(load["machine_cores_busy"], 2),
        "html": f"{stem}.html",
    }
