"""Reproducible load-test report with Locust: concurrency sweeps and server configurations.

    python -m loadtest.bench                         # start the server, sweep, stop it
    python -m loadtest.bench --host http://127.0.0.1:8000 --scenarios single --users 8,64
    python -m loadtest.bench --compare               # our server's configurations side by side

Per scenario (single, batch, mixed) and concurrency: req/s, rows/s, p50/p95/p99, error rate,
the load generator's CPU use (Locust shares the machine; a saturated Locust is reported as the
bottleneck, not quoted as the server's limit) and, with the API key, decisions logged vs 2xx
rows. Writes ``bench.json``, ``bench.md`` and Locust's HTML reports to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from core.api_keys import resolve_api_key
from core.settings import get_settings
from loadtest.bench_report import markdown
from loadtest.locust_run import USER_CLASSES, LocustRun, run_locust
from loadtest.log_counts import settled_count
from loadtest.server_process import ServerConfig, ServerProcess

CONFIGURATIONS = (
    ServerConfig("fast ingress (HAProxy + direct ingress), batching on, 1 scorer"),
    ServerConfig("default Ray proxy", fast_ingress=False),
    ServerConfig(
        "fast ingress, ingress micro-batching off", deployments={"Ingress": {"user_config": {"max_batch_size": 1}}}
    ),
    ServerConfig("fast ingress, 2 scorer replicas", deployments={"Scorer": {"num_replicas": 2}}),
)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def sweep(host: str, args: argparse.Namespace, api_key: str) -> list[dict[str, Any]]:
    """Every scenario × concurrency on one running server."""
    results = []
    for scenario in args.scenarios:
        for users in args.batch_users if scenario == "batch" else args.users:
            batch_size = args.mixed_batch_size if scenario == "mixed" else args.batch_size
            run = LocustRun(scenario, users, args.duration, batch_size, args.processes, args.locust_cpus)
            before = settled_count(host, api_key)
            result = run_locust(run, host, args.out / "locust", {"API_KEY": api_key})
            after = settled_count(host, api_key)
            if before is not None and after is not None:
                result["log"] = {"decisions_2xx": result["decisions_2xx"], "records_logged": after - before}
            results.append(result)
            print(
                f"{scenario:6} users {users:4}: {result['aggregated']['req_per_s']:8.1f} req/s "
                f"{result['rows_per_s']:9.1f} rows/s p50 {result['aggregated']['p50_ms']} ms "
                f"p99 {result['aggregated']['p99_ms']} ms errors {result['error_rate']:.2%} "
                f"locust {result['load_generator']['cpu_cores_used']} cores"
                + (f" logged {result['log']['records_logged']}/{result['decisions_2xx']}" if "log" in result else "")
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", help="a running server (default: start one with serve_config.yaml)")
    parser.add_argument(
        "--scenarios",
        type=lambda s: s.split(","),
        default=list(USER_CLASSES),
        help="comma-separated: single,batch,mixed",
    )
    parser.add_argument("--users", type=_ints, default=[1, 8, 32, 64, 128], help="concurrency sweep (single, mixed)")
    parser.add_argument("--batch-users", type=_ints, default=[1, 4], help="concurrency sweep (batch)")
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per /predict/batch (batch scenario)")
    parser.add_argument("--mixed-batch-size", type=int, default=20, help="rows per /predict/batch (mixed scenario)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--processes", type=int, default=1, help="Locust worker processes")
    parser.add_argument("--locust-cpus", type=lambda s: tuple(_ints(s)), help="pin Locust to these CPUs, e.g. 1")
    parser.add_argument("--compare", action="store_true", help="start and sweep each server configuration")
    parser.add_argument("--out", type=Path, default=get_settings().reports_dir / "loadtest")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(USER_CLASSES)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {sorted(USER_CLASSES)}")

    settings = get_settings()
    api_key = resolve_api_key(settings)
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu_count": os.cpu_count(),
        "database": "postgresql" if settings.database_url else "file",
        "runs": [],
    }
    if args.host:
        httpx.get(f"{args.host}/health", timeout=30).raise_for_status()
        report["runs"].append(
            {"configuration": "running server", "host": args.host, "results": sweep(args.host, args, api_key)}
        )
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        for config in CONFIGURATIONS if args.compare else CONFIGURATIONS[:1]:
            print(f"== {config.name}")
            with ServerProcess(config, {"API_KEY": api_key}, log=args.out / "server.log") as server:
                report["runs"].append(
                    {"configuration": config.name, "host": server.url, "results": sweep(server.url, args, api_key)}
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "bench.md").write_text(markdown(report))
    print(f"report: {args.out / 'bench.json'}, {args.out / 'bench.md'}, Locust HTML in {args.out / 'locust'}")


if __name__ == "__main__":
    main()
