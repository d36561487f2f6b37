"""Realized performance on outcomes drawn from the generator's known default probability.

Control traffic: the model card's figures come back (AUC ±0.02, calibration within 1 point per decile),
the report exits 0. Concept traffic (inputs as in training, the external scores' effect weakened): the drift
report stays quiet and the performance report fires, the AUC falling period by period.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.artifacts import load_card, resolve_model_dir
from core.settings import Settings
from monitoring import drift_report, performance_report
from monitoring.scenarios import SCENARIOS, applicants, true_defaults
from monitoring.traffic import backfill_records, write_outcomes, write_records
from tests.support.cli_runner import run_cli

pytestmark = pytest.mark.slow   # 2 × 24k decisions scored, stored and reported (~30 s)
ROWS = 24_000
NOW = datetime.now(UTC)


def backfilled(scenario: str, data_dir: Path) -> dict[str, str]:
    """Four weeks of ``scenario`` traffic with every outcome, in a file log of its own."""
    settings = Settings(data_dir=data_dir, database_url=None)
    frame = applicants(SCENARIOS[scenario], ROWS, seed=21)
    records = backfill_records(frame, 28, end=NOW)
    assert asyncio.run(write_records(records, settings, progress=False)) == ROWS
    defaulted = true_defaults(SCENARIOS[scenario], frame, seed=21)
    assert asyncio.run(write_outcomes(records, defaulted, NOW, settings)) == ROWS
    return {"DATA_DIR": str(data_dir), "DATABASE_URL": ""}


def report(env: dict[str, str], out: Path) -> tuple[int, dict]:
    done = run_cli(performance_report.run, env, ["--days", "29", "--by", "week", "--out", str(out)])
    assert done.returncode != 3, done.stderr
    return done.returncode, json.loads((out / "latest.json").read_text())


def test_control_traffic_matches_the_model_card(tmp_path: Path) -> None:
    code, summary = report(backfilled("control", tmp_path / "data"), tmp_path / "out")
    card = load_card(resolve_model_dir(None))
    figures = summary["model_versions"][card["version"]]
    assert figures["labelled"] == ROWS
    assert abs(figures["auc"] - card["holdout"]["auc"]) <= 0.02, figures["auc"]
    assert figures["calibration_mean_abs_error"] <= 0.01, figures["calibration"]
    assert code == 0, summary["alerts"]
    assert (tmp_path / "out" / "latest.html").stat().st_size > 10_000   # Evidently's classification report


def test_concept_drift_is_silent_in_inputs_and_loud_in_outcomes(tmp_path: Path) -> None:
    env = backfilled("concept", tmp_path / "data")
    drift = run_cli(drift_report.run, env, ["--days", "29", "--out", str(tmp_path / "drift")])
    assert drift.returncode == 0, drift.stdout
    code, summary = report(env, tmp_path / "out")
    assert code == 1 and any("AUC" in alert for alert in summary["alerts"])
    weekly = [row["auc"] for row in summary["periods"]]
    assert len(weekly) >= 4 and weekly[-1] < weekly[0] - 0.05, weekly   # the drop, period by period
