"""Disparate impact of the decisions: approval rates and adverse-impact ratios per group, error rates and
calibration where outcomes are known.

    python -m monitoring.fairness_report --days 30
    python -m monitoring.fairness_report --since 2026-11-01 --min-ratio 0.8 --min-decisions 100

Reads the window's decisions from the configured store (``DATABASE_URL`` or the JSONL file log), joins the
group membership the lender posted (``POST /groups``) and the outcomes, and computes what ``GET /fairness``
serves (``deployments/fairness.py``, Fairlearn's ``MetricFrame``) for the age bands (from the features) and
every posted attribute. Writes ``fairness-<time>.json`` and ``latest.json`` under ``--out`` (default
REPORTS_DIR/fairness). Exit status: 0 no alert; 1 a group with at least ``--min-decisions`` decisions has an
adverse-impact ratio below ``--min-ratio`` (the four-fifths rule); 3 no decisions in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.settings import Settings, get_settings
from deployments.fairness import FairnessQuery, fairness_of, window_counts
from models.fairness import MIN_DECISIONS, MIN_RATIO
from monitoring.report_window import add_window_arguments, window_since
from prediction_log.stores import open_stores

EXIT_OK, EXIT_ALERT, EXIT_EMPTY = 0, 1, 3



async def compute(settings: Settings, query: FairnessQuery) -> dict[str, Any]:
    stores = await open_stores(settings)
    try:
        assert query.since is not None and query.until is not None   # FairnessQuery bounds every window
        return fairness_of(await window_counts(stores, query.since, query.until), query)
    finally:
        await stores.log.close()


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'attribute':16} {'group':16} {'decisions':>9} {'approval':>8} {'ratio':>6} {'FNR':>6} {'FPR':>6} "
             f"{'AUC':>6} {'pred.':>6} {'obs.':>6}"]

    def cell(value: Any, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    for attribute, figures in report["attributes"].items():
        for group, f in figures["groups"].items():
            lines.append(f"{attribute:16} {group:16} {f['decisions']:9d} {cell(f['approval_rate'], '.1%'):>8} "
                         f"{cell(f['adverse_impact_ratio'], '.3f'):>6} {cell(f.get('false_negative_rate'), '.3f'):>6} "
                         f"{cell(f.get('false_positive_rate'), '.3f'):>6} {cell(f.get('auc'), '.3f'):>6} "
                         f"{cell(f.get('mean_predicted_default'), '.3f'):>6} "
                         f"{cell(f.get('observed_default_rate'), '.3f'):>6}")
    return "\n".join(lines)


def write_report(summary: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("fairness-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    path.write_text(json.dumps(summary, indent=2, default=str))
    shutil.copyfile(path, out_dir / "latest.json")
    return path


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_window_arguments(parser, days=30.0)
    parser.add_argument("--min-ratio", type=float, default=MIN_RATIO, help="alert below this adverse-impact ratio")
    parser.add_argument("--min-decisions", type=int, default=MIN_DECISIONS, help="groups smaller are not judged")
    parser.add_argument("--out", type=Path, help="report folder (default: REPORTS_DIR/fairness)")
    args = parser.parse_args(argv)
    settings = get_settings()
    since = window_since(args)
    query = FairnessQuery(since=since, until=args.until, min_ratio=args.min_ratio, min_decisions=args.min_decisions)
    report = asyncio.run(compute(settings, query))
    if not report["decisions"]:
        print(f"No decisions since {since.isoformat()}: nothing to measure.", file=sys.stderr)
        return EXIT_EMPTY
    path = write_report({"since": since.isoformat(), "until": args.until.isoformat() if args.until else None,
                         "alert": bool(report["alerts"]), **report}, args.out or settings.reports_dir / "fairness")
    print(format_table(report))
    print("\n".join([f"ALERT {a['attribute']}={a['group']}: adverse-impact ratio {a['adverse_impact_ratio']:.3f} "
                     f"< {args.min_ratio} (approval {a['approval_rate']:.1%}, {a['decisions']} decisions)"
                     for a in report["alerts"]] or ["no group below the adverse-impact ratio"]))
    print(f"report: {path}")
    return EXIT_ALERT if report["alerts"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
