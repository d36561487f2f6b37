"""Drift report over the prediction log: control → no alert, drift → exactly the moved features."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import resolve_model_dir
from core.psi import psi
from core.settings import PROJECT_ROOT, Settings
from loadtest.bench_log_scale import counting_for
from models.baseline import load_baseline
from monitoring import drift_report
from monitoring.scenarios import SCENARIOS, applicants
from monitoring.traffic import backfill_records, write_records
from prediction_log.records import Block, concat
from tests.support.cli_runner import run_cli
from tests.support.pg_cluster import PgCluster

MOVED = {"EXT_SOURCE_2", "DAYS_BIRTH", "AMT_ANNUITY"}
DERIVED = {"EXT_SOURCES_MEAN", "EXT_SOURCES_WEIGHTED", "CREDIT_TERM"}
"""Computed from a moved column: may be flagged, nothing else may."""
NOW = datetime.now(UTC)
CONTROL_WINDOW = ("--since", (NOW - timedelta(days=13)).isoformat(), "--until", (NOW - timedelta(days=9)).isoformat())
DRIFT_WINDOW = ("--since", (NOW - timedelta(days=3, hours=1)).isoformat())


def _backfill(settings: Settings) -> Block:
    """Control traffic 13–10 days ago, fully drifted traffic over the last 3 days (returned)."""
    control = backfill_records(applicants(SCENARIOS["control"], 3000, seed=11, ramp=False), 3,
                               end=NOW - timedelta(days=10))
    drift = backfill_records(applicants(SCENARIOS["drift"], 3000, seed=12, ramp=False), 3, end=NOW)
    asyncio.run(write_records(concat([control, drift]), settings, progress=False))
    return drift


def _cli(env: dict[str, str], out: Path, *window: str) -> subprocess.CompletedProcess:
    """The report as the README runs it: a process of its own."""
    return subprocess.run([sys.executable, "-m", "monitoring.drift_report", *window, "--out", str(out)],
                          cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def _report(env: dict[str, str], out: Path, *window: str) -> subprocess.CompletedProcess:
    """The same command in this process (the fast tier)."""
    return run_cli(drift_report.run, env, [*window, "--out", str(out)])


@pytest.fixture(scope="module")
def file_log(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("drift-data")
    _backfill(Settings(data_dir=data_dir, database_url=None))
    return {"DATA_DIR": str(data_dir), "DATABASE_URL": ""}


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert psi(reference, rng.normal(size=5000)) < 0.02
    assert psi(reference, rng.normal(0.5, 1, size=5000)) > 0.2


def test_control_traffic_raises_no_drift(file_log: dict[str, str], tmp_path: Path) -> None:
    done = _report(file_log, tmp_path, *CONTROL_WINDOW)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "latest.json").read_text())
    assert summary["window"]["rows"] == 3000
    assert (summary["psi_from"], summary["psi_decisions"]) == ("histograms", 3000)   # the file log counts them all
    assert summary["drifted_count"] == 0 and not summary["drift_detected"]
    assert all(f["psi"] < 0.1 for f in summary["features"])
    assert abs(summary["approval_rate"]["current"] - summary["approval_rate"]["reference"]) < 0.03


def test_drifted_traffic_flags_exactly_the_moved_features(file_log: dict[str, str], tmp_path: Path) -> None:
    done = _report(file_log, tmp_path, *DRIFT_WINDOW)
    assert done.returncode == 1, done.stderr
    summary = json.loads((tmp_path / "latest.json").read_text())
    flagged = {f["feature"] for f in summary["features"] if f["drifted"]}
    assert MOVED <= flagged <= MOVED | DERIVED
    assert summary["drift_detected"] and summary["drift_share"] == len(flagged) / 10
    assert summary["window"]["rows"] == 3000
    # Younger applicants with weaker external scores: more risk, fewer approvals.
    assert summary["probability_default"]["current"]["mean"] > summary["probability_default"]["reference"]["mean"]
    assert summary["approval_rate"]["current"] < summary["approval_rate"]["reference"]
    assert sum(day["rows"] for day in summary["daily"]) == 3000
    for name in flagged:
        assert name in done.stdout
    html = tmp_path / summary["html"]
    assert html.stat().st_size > 10_000 and (tmp_path / "latest.html").read_bytes() == html.read_bytes()
    assert (
        json.loads((tmp_path / summary["html"]).with_suffix(".json").read_text())["drift_share"]
        == summary["drift_share"]
    )


def test_a_higher_alert_share_lets_the_same_drift_pass(file_log: dict[str, str], tmp_path: Path) -> None:
    done = _report(file_log, tmp_path, *DRIFT_WINDOW, "--max-drift-share", "0.9")
    assert done.returncode == 0, done.stderr


def test_empty_window_gets_a_clear_message_and_its_own_exit_code(file_log: dict[str, str], tmp_path: Path) -> None:
    done = _report(file_log, tmp_path, "--since", "2001-01-01", "--until", "2001-01-02")
    assert done.returncode == 3
    assert "No decisions in the window" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "latest.json").exists()


@pytest.mark.slow
def test_report_reads_the_postgresql_log(tmp_path: Path) -> None:
    cluster = PgCluster()
    cluster.start()
    try:
        asyncio.run(counting_for(cluster.dsn, 30))  # as a server counting for a month has
        drifted = _backfill(Settings(data_dir=tmp_path, database_url=cluster.dsn))
        env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": cluster.dsn}
        drift = _cli(env, tmp_path / "drift", *DRIFT_WINDOW)
        control = _cli(env, tmp_path / "control", *CONTROL_WINDOW)
    finally:
        cluster.destroy()
    assert (drift.returncode, control.returncode) == (1, 0), drift.stderr + control.stderr
    assert "PostgreSQL" in drift.stdout and "PSI from the histograms of all 3,000 decisions" in drift.stdout
    summary = json.loads((tmp_path / "drift" / "latest.json").read_text())
    assert MOVED <= {f["feature"] for f in summary["features"] if f["drifted"]} <= MOVED | DERIVED
    # every drifted decision counted by the log's trigger: PSI equals the one computed from the records
    frame = load_baseline(resolve_model_dir(None)).frame
    assert summary["psi_from"] == "histograms"
    for f in summary["features"]:
        assert f["psi"] == pytest.approx(
            psi(frame[f["feature"]].to_numpy(), drifted.column(f["feature"]).to_numpy()), abs=1e-12
        ), f["feature"]
