"""Markdown rendering of a ``loadtest.bench`` report."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def markdown(report: dict[str, Any]) -> str:
    """One table per server configuration; Locust saturation and log counts next to the figures."""
    lines = [f"# Load test {report['started_at']}", "",
             f"{report['cpu_count']} CPUs, prediction log: {report['database']}. Locust shares the machine: "
             "its CPU use is shown per run, and runs where it was saturated measure Locust, not the server.", ""]
    for run in report["runs"]:
        lines += [f"## {run['configuration']}", "",
                  "| scenario | users | req/s | rows/s | p50 ms | p95 ms | p99 ms | errors | Locust cores | "
                  "machine cores busy | logged / 2xx rows |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in run["results"]:
            a, gen = r["aggregated"], r["load_generator"]
            logged = f"{r['log']['records_logged']} / {r['log']['decisions_2xx']}" if "log" in r else "—"
            scenario = r["scenario"] + (f" ({r['batch_size']} rows)" if r["batch_size"] else "")
            lines.append(f"| {scenario} | {r['users']} | {a['req_per_s']:,.1f} | {r['rows_per_s']:,.1f} | "
                         f"{_ms(a['p50_ms'])} | {_ms(a['p95_ms'])} | {_ms(a['p99_ms'])} | {r['error_rate']:.2%} | "
                         f"{gen['cpu_cores_used']}{' (saturated)' if gen['saturated'] else ''} | "
                         f"{r['machine_cpu_cores_busy']} | {logged} |")
        lines.append("")
    return "\n".join(lines)
