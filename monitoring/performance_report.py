"""Realized performance: the prediction log joined with loan outcomes, against the model card.

    python -m monitoring.performance_report --days 90
    python -m monitoring.performance_report --since 2026-08-01 --by week --max-auc-drop 0.03

Reads decisions that have an outcome from the configured store (``DATABASE_URL`` or the JSONL file log
with ``outcomes.jsonl``), computes per period and model version what ``GET /performance`` serves (AUC,
default rate, Brier score, cost 10·FN + 1·FP at the threshold in force, calibration per decile) beside
the model card's holdout figures, and runs Evidently's ClassificationPreset on them. Writes
``performance-<time>.html`` / ``.json`` and ``latest.*`` under ``--out`` (default REPORTS_DIR/performance).

Exit status: 0 within the card's margins; 1 AUC more than ``--max-auc-drop`` below the card, or cost per
decision above ``--max-cost-ratio`` × the card's, for any model version; 3 no labelled decisions.
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

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.presets import ClassificationPreset

from core.settings import Settings, get_settings
from deployments.performance import card_of_version, performance
from monitoring.report_window import add_window_arguments, window_since
from prediction_log.outcomes import Labelled
from prediction_log.stores import open_stores

EXIT_OK, EXIT_ALERT, EXIT_EMPTY = 0, 1, 3
LATEST = "latest"


async def read_labelled(settings: Settings, since: datetime | None, until: datetime | None,
                        model_version: str | None) -> Labelled:
    stores = await open_stores(settings)
    try:
        return await stores.outcomes.labelled(since, until, model_version)
    finally:
        await stores.log.close()


def alerts(report: dict[str, Any], max_auc_drop: float, max_cost_ratio: float) -> list[str]:
    """What is outside the card's margins, per model version (a version without a card here is not judged)."""
    found = []
    for version, figures in report["model_versions"].items():
        expected = figures["expected"]
        if expected is None:
            continue
        if figures["auc"] is not None and figures["auc"] < expected["auc"] - max_auc_drop:
            found.append(f"{version}: AUC {figures['auc']:.4f} < card {expected['auc']:.4f} - {max_auc_drop}")
        if figures["cost_per_decision"] > expected["cost_per_decision"] * max_cost_ratio:
            found.append(f"{version}: cost per decision {figures['cost_per_decision']:.3f} > "
                         f"{max_cost_ratio} x card {expected['cost_per_decision']:.3f}")
    return found


def evidently_snapshot(labelled: Labelled, threshold: float) -> Any:
    frame = pd.DataFrame({"target": labelled.defaulted.astype(int), "prediction": labelled.probability})
    definition = DataDefinition(classification=[BinaryClassification(target="target", prediction_probas="prediction",
                                                                     pos_label=1)])
    return Report([ClassificationPreset(probas_threshold=threshold)]).run(
        Dataset.from_pandas(frame, data_definition=definition), None)


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'period':12} {'model':20} {'labelled':>8} {'default':>8} {'AUC':>7} {'card AUC':>8} "
             f"{'cost/dec':>8} {'card':>6} {'calib.err':>9}"]
    for row in report["periods"]:
        expected = row["expected"] or {}
        auc = f"{row['auc']:.4f}" if row["auc"] is not None else "—"
        calibration = f"{row['calibration_mean_abs_error']:.4f}" if row["calibration_mean_abs_error"] is not None \
            else "—"
        lines.append(f"{row['period_start']:12} {row['model_version']:20} {row['labelled']:8d} "
                     f"{row['default_rate']:8.2%} {auc:>7} {expected.get('auc', float('nan')):8.4f} "
                     f"{row['cost_per_decision']:8.3f} {expected.get('cost_per_decision', float('nan')):6.3f} "
                     f"{calibration:>9}")
    return "\n".join(lines)


def write_report(summary: dict[str, Any], snapshot: Any, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "performance-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    html, data = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    snapshot.save_html(str(html))
    data.write_text(json.dumps({**summary, "html": html.name}, indent=2, default=str))
    shutil.copyfile(html, out_dir / f"{LATEST}.html")
    shutil.copyfile(data, out_dir / f"{LATEST}.json")
    return data


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_window_arguments(parser, days=90.0)
    parser.add_argument("--by", choices=["day", "week"], default="week")
    parser.add_argument("--model-version", help="only this model's decisions")
    parser.add_argument("--max-auc-drop", type=float, default=0.03, help="alert when AUC < card AUC - this")
    parser.add_argument("--max-cost-ratio", type=float, default=1.2,
                        help="alert when cost per decision > this x the card's")
    parser.add_argument("--out", type=Path, help="report folder (default: REPORTS_DIR/performance)")
    args = parser.parse_args(argv)

    settings = get_settings()
    since = window_since(args)
    labelled = asyncio.run(read_labelled(settings, since, args.until, args.model_version))
    if not len(labelled):
        print(f"No decisions with outcomes since {since.isoformat()}: nothing to measure.", file=sys.stderr)
        return EXIT_EMPTY
    report = performance(labelled, args.by, card_of_version)
    found = alerts(report, args.max_auc_drop, args.max_cost_ratio)
    summary = {"since": since.isoformat(), "until": args.until.isoformat() if args.until else None,
               "max_auc_drop": args.max_auc_drop, "max_cost_ratio": args.max_cost_ratio, "alerts": found,
               "alert": bool(found), **report}
    path = write_report(summary, evidently_snapshot(labelled, float(labelled.threshold[-1])),
                        args.out or settings.reports_dir / "performance")
    print(format_table(report))
    print("\n".join(["ALERT " + line for line in found] or ["within the model card's margins"]))
    print(f"report: {path} and {path.with_suffix('.html')}")
    return EXIT_ALERT if found else EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
