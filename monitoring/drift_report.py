"""Drift report over a window of the prediction log against the model's training baseline.

    python -m monitoring.drift_report --days 7
    python -m monitoring.drift_report --since 2026-11-01 --until 2026-11-08 --max-drift-share 0.3

Reads a uniform sample of the window from the configured store (``DATABASE_URL`` or the JSONL file log), runs
Evidently's DataDriftPreset over it for the ten features, adds PSI per feature from the histograms the log keeps
of every decision on the baseline's bins (the sample's until the log has counted the whole window:
``prediction_log.histograms``), the distribution
of ``probability_default`` and the approval rate per day, prints a table, and writes
``drift-<time>.html`` / ``.json`` plus ``latest.html`` / ``latest.json`` (what the dashboard
shows) under ``--out`` (default ``REPORTS_DIR/drift``).

Exit status: 0 no alert; 1 drifted-feature share above ``--max-drift-share``;
3 the window holds no decisions (2 is argparse's usage error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.artifacts import MODELS_DIR, resolve_model_dir
from core.settings import get_settings
from models.baseline import load_baseline
from monitoring.drift_analysis import DriftAnalysis, analyse
from monitoring.log_window import SAMPLE_ROWS, read_window, window_histograms
from monitoring.report_window import add_window_arguments, window_since
from prediction_log.histograms import drift_bins

EXIT_OK, EXIT_DRIFT, EXIT_EMPTY = 0, 1, 3
LATEST = "latest"


def write_report(analysis: DriftAnalysis, out_dir: Path) -> Path:
    """Write the HTML and JSON report (timestamped and as ``latest``); returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "drift-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    html, data = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    analysis.snapshot.save_html(str(html))
    summary = {**analysis.summary, "html": html.name}
    data.write_text(json.dumps(summary, indent=2))
    shutil.copyfile(html, out_dir / f"{LATEST}.html")
    shutil.copyfile(data, out_dir / f"{LATEST}.json")
    return data


def format_table(summary: dict) -> str:
    """Per-feature table for the terminal."""
    lines = [f"{'feature':32} {'method':34} {'statistic':>9} {'thresh':>6} {'PSI':>7}  drift"]
    for f in summary["features"]:
        lines.append(f"{f['feature']:32} {f['method']:34} {f['statistic']:9.4f} {f['stat_threshold']:6.2f} "
                     f"{f['psi']:7.4f}  {'DRIFT' if f['drifted'] else 'ok'}")
    p, a = summary["probability_default"], summary["approval_rate"]
    lines += [
        f"probability_default: mean {p['current']['mean']:.4f} vs baseline {p['reference']['mean']:.4f}, "
        f"PSI {p['psi']:.4f}, {'DRIFT' if p['drifted'] else 'ok'}",
        f"approval rate: {a['current']:.2%} vs baseline {a['reference']:.2%}",
        f"drifted features: {summary['drifted_count']}/{len(summary['features'])} "
        f"(share {summary['drift_share']:.2f}, alert above {summary['max_drift_share']:.2f})",
    ]
    return "\n".join(lines)


def _baseline_model(window_versions: dict[str, int], model: str | None) -> Path:
    """The requested model, else the window's most frequent version if present here, else the latest."""
    if model:
        return resolve_model_dir(model)
    for version in sorted(window_versions, key=lambda v: window_versions[v], reverse=True):
        if (MODELS_DIR / version).is_dir():
            return MODELS_DIR / version
    return resolve_model_dir(None)


def run(argv: list[str] | None = None) -> int:
    """The command; returns its exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_window_arguments(parser, days=7.0)
    parser.add_argument("--max-drift-share", type=float, default=0.25,
                        help="exit 1 when the share of drifted features is above this")
    parser.add_argument("--model", help="baseline model version (default: the window's)")
    parser.add_argument("--out", type=Path, help="report folder (default: REPORTS_DIR/drift)")
    parser.add_argument("--sample-rows", type=int, default=SAMPLE_ROWS,
                        help="read a uniform sample of at most this many decisions of the window")
    args = parser.parse_args(argv)

    settings = get_settings()
    until = args.until
    since = window_since(args)
    window, total = asyncio.run(read_window(settings, since, until, args.sample_rows))
    store = "PostgreSQL" if settings.database_url else f"file log {settings.data_dir}"
    if window.empty:
        print(f"No decisions in the window {since.isoformat()} .. {until.isoformat() if until else 'now'} "
              f"({store}). Nothing to compare; widen --days/--since.", file=sys.stderr)
        return EXIT_EMPTY

    versions = {str(v): int(n) for v, n in window["model_version"].value_counts().items()}
    baseline = load_baseline(_baseline_model(versions, args.model))
    counts = asyncio.run(window_histograms(settings, drift_bins(baseline.frame), since, until))
    analysis = analyse(window, baseline, since, until, args.max_drift_share, counts)
    analysis.summary["window"]["decisions_in_window"] = total
    analysis.summary["window"]["sampled"] = len(window) < total
    path = write_report(analysis, args.out or settings.reports_dir / "drift")
    sample = f"a uniform sample of {len(window):,} of {total:,}" if len(window) < total else f"{total:,}"
    psi_from = (f"PSI from the histograms of all {analysis.summary['psi_decisions']:,} decisions of the window's "
                "whole hours" if counts is not None else "PSI from the sample (the log counts into these bins from "
                "the next hour on)")
    print(f"{sample} decisions from {store}, baseline {baseline.model_version}; {psi_from}")
    print(format_table(analysis.summary))
    print(f"report: {path} and {path.with_suffix('.html')}")
    return EXIT_DRIFT if analysis.summary["drift_detected"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
