"""Serving benchmark with wrk: single-row /predict at N connections, rows/s for /predict/batch.

    python -m loadtest.bench_serving [--host http://127.0.0.1:8000] [--duration 15]

Targets a running server. wrk (Debian package ``wrk``) is a C load generator that
costs little CPU, so on a 2-core machine the figures reflect the server. Writes JSON to
``reports/bench_serving.json`` (or ``--out``). When the API key is available it also
reports decisions logged vs 2xx responses.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from core.api_keys import resolve_api_key
from core.reference import sample_applicants
from core.settings import PROJECT_ROOT, get_settings
from loadtest.log_counts import settled_stats

LUA = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"}, bodies[i])
end
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, " ..
    "\\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"non_2xx\\": %%d, \\"socket_errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    host: str, path: str, bodies: list[str], connections: int, duration: int, threads: int = 1
) -> dict[str, Any]:
    """One wrk run; returns req/s, latency percentiles (ms) and error counts."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (",".join(_lua_string(b) for b in bodies), path))
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        script.name,
        host,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    match = re.search(r"^RESULT (\{.*\})$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6  # req_per_s counts 2xx answers only: an error page is not throughput
    return {
        "path": path,
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "req_per_s": round((raw["requests"] - raw["non_2xx"]) / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=get_settings().api_url)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--label", default="", help="free text stored with the figures")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench_serving.json")
    args = parser.parse_args()

    httpx.get(f"{args.host}/health", timeout=30).raise_for_status()
    singles = [json.dumps(a) for a in sample_applicants(500, seed=1)]
    batches = [json.dumps(sample_applicants(args.batch_size, seed=s)) for s in range(4)]
    api_key = resolve_api_key(get_settings())
    before = settled_stats(args.host, api_key)
    warm = run_wrk(args.host, "/predict", singles, args.connections, 3)
    single = run_wrk(args.host, "/predict", singles, args.connections, args.duration)
    batch = run_wrk(args.host, "/predict/batch", batches, args.batch_connections, args.duration)
    batch["rows_per_s"] = round(batch["req_per_s"] * args.batch_size, 1)
    batch["batch_size"] = args.batch_size
    after = settled_stats(args.host, api_key) if before else None  # once the last log flushes landed
    report: dict[str, Any] = {
        "label": args.label,
        "host": args.host,
        "single": single,
        "batch": batch,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if before and after:  # settled_stats only returns stats with records_in_store
        answered = sum(r["requests"] - r["non_2xx"] for r in (warm, single))
        answered += (batch["requests"] - batch["non_2xx"]) * args.batch_size
        report["log"] = {
            "backend": after["backend"],
            "responses_2xx_counted_by_wrk": answered,
            "records_logged": after["records_in_store"] - before["records_in_store"],
            "note": "wrk stops counting with requests still in flight; those are answered and logged too",
            "spool_records": after["spool_records"],
            "rejected": after["rejected"],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
