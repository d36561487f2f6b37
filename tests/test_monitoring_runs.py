"""The monitoring the server runs by itself (``deployments.monitoring_run``): on the control, drift and concept
scenarios its PSI and realized AUC make the alert rules fire exactly where they should (``promtool``), and
``GET /monitoring/runs`` serves runs only with a key."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from core.settings import LogWriterConfig
from deployments.monitoring_run import monitoring_run
from deployments.performance import card_of_version
from monitoring.scenarios import SCENARIOS, applicants, true_defaults
from monitoring.traffic import backfill_records
from prediction_log.files.outcomes import FileOutcomes
from prediction_log.files.store import FileStore
from prediction_log.outcomes import Outcomes
from tests.conftest import API_KEY
from tests.support.in_process import InProcessBackend, on_loop
from tests.test_alert_rules import PROMTOOL, RULES_DIR

NOW = datetime.now(UTC)
ROWS = 4000
DRIFTING = {"EXT_SOURCE_2", "DAYS_BIRTH", "CREDIT_TERM", "EXT_SOURCES_MEAN", "EXT_SOURCES_WEIGHTED"}
"""The features the drift scenario moves by more than PSI 0.2: its shifted inputs and what is derived from them
(AMT_ANNUITY x1.2 moves CREDIT_TERM; EXT_SOURCE_2 the two means)."""


async def _run(scenario: str, tmp_path: Path) -> dict[str, Any]:
    """A day of the scenario's decisions with every outcome, through the file log's stores; one run over them."""
    frame = applicants(SCENARIOS[scenario], ROWS, seed=3, ramp=False)
    records = backfill_records(frame, days=0.5, end=NOW - timedelta(minutes=1))
    store = FileStore(tmp_path / scenario)
    await store.insert(records)
    outcomes = FileOutcomes(tmp_path / f"{scenario}-outcomes.jsonl", store)
    defaulted = [int(v) for v in true_defaults(SCENARIOS[scenario], frame, 3, ramp=False)]
    await outcomes.record(Outcomes(records.column("request_id").to_pylist(), defaulted, [NOW] * ROWS))
    run = await monitoring_run(NOW, LogWriterConfig(), store.sample_between, outcomes.labelled, card_of_version,
                               store.histograms, store.scored)
    await store.close()
    assert (run.psi_from, run.window_decisions, run.sampled) == ("histograms", ROWS, 0)
    return asdict(run)


def _promtool(run: dict[str, Any], drifting: set[str], auc_drop: bool, tmp_path: Path,
              estimated_drop: bool = False) -> str:
    """``promtool test rules`` on the run's gauges, expecting exactly ``CreditFeatureDrift`` for ``drifting``,
    ``CreditRealizedAucDrop`` when ``auc_drop`` and ``CreditEstimatedAucDrop`` when ``estimated_drop``; its output
    when that is not what the rules do, else ''."""
    rules = {r["alert"]: r for g in yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
             for r in g["rules"]}

    def alerts(name: str, labels: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{"exp_labels": {**rules[name]["labels"], **extra}, "exp_annotations": rules[name]["annotations"]}
                for extra in labels]

    series = [
        {"series": f'ray_credit_feature_psi{{feature="{f}"}}', "values": f"{v}x10"} for f, v in run["psi"].items()
    ]
    series += [
        {"series": "ray_credit_realized_auc", "values": f"{run['realized_auc']}x10"},
        {"series": "ray_credit_expected_auc", "values": f"{run['expected_auc']}x10"},
        {"series": "ray_credit_estimated_auc_drop",
         "values": f"{run['estimated_expected_auc'] - run['estimated_auc']}x10"},
    ]
    checks = [
        {
            "eval_time": "5m",
            "alertname": "CreditFeatureDrift",
            "exp_alerts": alerts("CreditFeatureDrift", [{"feature": f} for f in sorted(drifting)]),
        },
        {
            "eval_time": "5m",
            "alertname": "CreditRealizedAucDrop",
            "exp_alerts": alerts("CreditRealizedAucDrop", [{}] if auc_drop else []),
        },
        {
            "eval_time": "5m",
            "alertname": "CreditEstimatedAucDrop",
            "exp_alerts": alerts("CreditEstimatedAucDrop", [{}] if estimated_drop else []),
        },
    ]
    path = tmp_path / "monitoring_test.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES_DIR / "alerts.yml")],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
            }
        )
    )
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    return "" if done.returncode == 0 else done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool (apt-get install prometheus)")
def test_the_alerts_fire_on_drift_and_concept_and_stay_silent_on_control(tmp_path: Path) -> None:
    runs = {name: asyncio.run(_run(name, tmp_path)) for name in ("control", "drift", "concept")}
    assert all(r["window_decisions"] == ROWS and r["labelled"] == ROWS for r in runs.values())
    assert _promtool(runs["control"], set(), False, tmp_path) == ""
    assert _promtool(runs["drift"], DRIFTING, False, tmp_path) == ""
    assert _promtool(runs["concept"], set(), True, tmp_path) == ""
    assert _promtool(runs["control"], {"DAYS_BIRTH"}, False, tmp_path) != ""  # the check can fail
    worse = {**runs["control"], "estimated_auc": runs["control"]["estimated_expected_auc"] - 0.05}
    assert _promtool(worse, set(), False, tmp_path, estimated_drop=True) == ""
    assert _promtool(worse, set(), False, tmp_path) != ""


def test_the_estimate_follows_drift_and_cannot_see_concept_drift(tmp_path: Path) -> None:
    """CBPE from every decision's counts, before outcomes: on drifted inputs within 0.02 of the AUC their outcomes
    give, inside its interval; on the concept scenario (inputs unchanged, their relation to default not) the
    realized AUC falls far outside the interval while the estimate stays where calibration puts it."""
    runs = {name: asyncio.run(_run(name, tmp_path)) for name in ("drift", "concept")}
    drift, concept = runs["drift"], runs["concept"]
    assert abs(drift["estimated_auc"] - drift["realized_auc"]) < 0.02
    low, high = drift["estimated_auc_interval"]
    assert low <= drift["realized_auc"] <= high
    assert concept["realized_auc"] < concept["estimated_auc_interval"][0] - 0.05
    assert abs(concept["estimated_auc"] - concept["estimated_expected_auc"]) < 0.03


def test_monitoring_runs_are_served_with_a_key_only(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, backend = local_api
    assert client.post("/predict/batch", json=sample_applicants(300, seed=4)).status_code == 200
    on_loop(client, backend.monitor_once)  # the log writer's timer
    assert client.get("/monitoring/runs").status_code == 401
    answer = client.get("/monitoring/runs", headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200
    run = answer.json()["items"][0]
    assert run["window_decisions"] >= 300 and set(run["psi"]) == set(FEATURE_NAMES)


def test_no_decisions_no_psi(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "empty")
    outcomes = FileOutcomes(tmp_path / "outcomes.jsonl", store)
    run = asyncio.run(
        monitoring_run(
            NOW, LogWriterConfig(), store.sample_between, outcomes.labelled, card_of_version, store.histograms
        )
    )
    assert run.psi is None and run.realized_auc is None and run.window_decisions == 0
