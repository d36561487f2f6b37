"""Disparate-impact monitoring: group membership kept apart from the decisions, Fairlearn figures per group,
the four-fifths alert firing on the ``fairness`` scenario and silent on control, keys with the scope."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.features import AGE_ATTRIBUTE, ELDERLY_BAND, age_bands
from core.reference import json_rows
from core.settings import PROJECT_ROOT
from models.fairness import fairness
from monitoring.scenarios import GROUP_ATTRIBUTE, SCENARIOS, applicants, groups_of
from tests.support.in_process import InProcessBackend, serving

FULL, READER, FAIRNESS = "full-key-0123456789", "reader-key-0123456789", "fairness-key-0123456789"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with serving(InProcessBackend(tmp_path, FULL, f"read:{READER} fairness:{FAIRNESS}")) as c:
        yield c


def _decide(client: TestClient, scenario: str, n: int = 2000, seed: int = 4) -> list[str]:
    frame = applicants(SCENARIOS[scenario], n, seed, ramp=False)
    answers = client.post("/predict/batch", json=json_rows(frame)).json()["results"]
    return [a["request_id"] for a in answers]


def test_groups_and_fairness_need_the_fairness_scope(client: TestClient) -> None:
    ids = _decide(client, "control", 50)
    body = [{"request_id": i, "attribute": GROUP_ATTRIBUTE, "group": "A"} for i in ids]
    assert client.post("/groups", json=body).status_code == 401
    assert client.post("/groups", json=body, headers={"X-API-Key": READER}).status_code == 403
    assert client.get("/fairness").status_code == 401
    assert client.get("/fairness", headers={"X-API-Key": READER}).status_code == 403
    receipt = client.post("/groups", json=body + [{"request_id": "nope", "attribute": GROUP_ATTRIBUTE, "group": "A"}],
                          headers={"X-API-Key": FAIRNESS}).json()
    assert receipt == {"accepted": 50, "unknown_request_ids": ["nope"], "duplicates": 0}
    assert client.post("/groups", json=body[:5], headers={"X-API-Key": FAIRNESS}).json()["duplicates"] == 5
    derived = [{"request_id": ids[0], "attribute": AGE_ATTRIBUTE, "group": "x"}]
    assert client.post("/groups", json=derived, headers={"X-API-Key": FAIRNESS}).status_code == 422


@pytest.mark.parametrize(("scenario", "alert"), [("control", False), ("fairness", True)])
def test_the_four_fifths_alert_names_the_group_on_the_fairness_scenario_only(client: TestClient, scenario: str,
                                                                              alert: bool) -> None:
    ids = _decide(client, scenario)
    groups = groups_of(len(ids), 4)
    body = [{"request_id": i, "attribute": GROUP_ATTRIBUTE, "group": g} for i, g in zip(ids, groups)]
    assert client.post("/groups", json=body, headers={"X-API-Key": FAIRNESS}).status_code == 200
    report = client.get("/fairness", headers={"X-API-Key": FAIRNESS}).json()
    segment = report["attributes"][GROUP_ATTRIBUTE]
    assert set(segment["groups"]) == {"A", "B"} and report["attributes"][AGE_ATTRIBUTE]["groups"]
    if alert:
        assert [(a["attribute"], a["group"]) for a in report["alerts"]] == [(GROUP_ATTRIBUTE, "B")]
        assert report["alerts"][0]["adverse_impact_ratio"] < 0.8
    else:
        assert report["alerts"] == []


def test_figures_are_fairlearn_metric_frames_on_known_data() -> None:
    denied = np.array([0, 0, 1, 1, 0, 1, 1, 1] * 50, dtype=bool)
    group = {i: ("A" if i % 8 < 4 else "B") for i in range(400)}   # A approves 2 of 4, B 1 of 4
    defaulted = np.array([0, 1, 1, 0, 0, 1, 1, 0] * 50, dtype=np.int8)
    report = fairness(np.full(400, -20000), denied, np.linspace(0.01, 0.5, 400), defaulted, {"g": group})
    figures = report["attributes"]["g"]["groups"]
    assert figures["A"]["approval_rate"] == 0.5 and figures["B"]["approval_rate"] == 0.25
    assert figures["B"]["adverse_impact_ratio"] == 0.5 and report["alerts"][0]["group"] == "B"
    assert figures["A"]["false_negative_rate"] == 0.5   # A: defaulters 1 (approved) and 2 (denied)
    assert list(age_bands(np.array([-8000, -20000, -23000]))) == ["under 25", "40-61", ELDERLY_BAND]


@pytest.mark.slow   # two backfills and two report runs in subprocesses (~30 s)
@pytest.mark.parametrize(("scenario", "status"), [("control", 0), ("fairness", 1)])
def test_report_cli_exits_1_naming_the_group_and_the_ratio(tmp_path: Path, scenario: str, status: int) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "REPORTS_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "monitoring.traffic", "backfill", "--scenario", scenario, "--rows", "6000",
                    "--days", "7", "--no-ramp", "--groups", "--outcomes", "--no-progress"],
                   cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "monitoring.fairness_report", "--days", "8"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == status, done.stdout + done.stderr
    if status:
        assert "ALERT segment=B: adverse-impact ratio 0." in done.stdout
    assert (tmp_path / "fairness" / "latest.json").exists()


def test_an_empty_window_is_an_empty_report(client: TestClient) -> None:
    """Found by the OpenAPI fuzz test: a window before any decision once answered 503."""
    _decide(client, "control", 20)
    report = client.get("/fairness", params={"until": "0359-04-08T03:08:29Z"}, headers={"X-API-Key": FAIRNESS})
    assert report.status_code == 200 and report.json()["decisions"] == 0 and report.json()["alerts"] == []


def test_a_huge_min_decisions_is_a_422_not_a_500(client: TestClient) -> None:
    """OpenAPI fuzz finding: an integer beyond 64 bits passed validation and broke the JSON answer (500)."""
    response = client.get("/fairness", params={"min_decisions": 131253000825779072794624},
                          headers={"X-API-Key": FAIRNESS})
    assert response.status_code == 422


def test_reads_are_bounded_by_their_window(client: TestClient) -> None:
    """A fairness key cannot make the log writer read the whole log, nor a read key every minute row of it."""
    key = {"X-API-Key": FAIRNESS}
    open_window = client.get("/fairness", headers=key).json()   # the last 92 days, widened to whole UTC days
    since, until = datetime.fromisoformat(open_window["since"]), datetime.fromisoformat(open_window["until"])
    assert until - since <= timedelta(days=93) and since.hour == until.hour == 0 and until > datetime.now(UTC)
    too_long = client.get("/fairness", params={"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                          headers=key)
    assert too_long.status_code == 422 and "since" in too_long.text
    for year in ("0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z"):
        assert client.get("/fairness", params={"until": year}, headers=key).status_code == 200
    read = {"X-API-Key": READER}
    for params in ({"bucket": "minute"}, {"bucket": "minute", "since": "2026-01-01T00:00:00Z"}):
        response = client.get("/predictions/summary", params=params, headers=read)
        assert response.status_code == 422 and "bucket=minute" in response.text, params
    assert client.get("/predictions/summary", params={"bucket": "hour"}, headers=read).status_code == 200


def test_one_decision_gets_figures_not_an_error() -> None:
    """Fairlearn reads a one-element group array as a table of features: the first decision of a day must still get
    its figures (it made /fairness answer 503)."""
    report = fairness(np.array([-20000]), np.array([False]), np.array([0.05]), np.array([-1], np.int8), {})
    assert report["decisions"] == 1 and report["attributes"][AGE_ATTRIBUTE]["groups"]["40-61"]["approval_rate"] == 1
