"""Champion and challenger over a served app: shadow scores beside the champion's without changing an
answer, a challenger stopped or killed under load costs no champion answer, a canary share routed by key,
and the challenger added, changed and removed by ``serve deploy`` under load without a failed request.

The challenger is a LightGBM model of its own exported with onnxmltools' defaults (zipmap output) into a
folder holding nothing but ``model.onnx``: any binary classifier over the ten features will do.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import lightgbm as lgb
import numpy as np
import onnxmltools
import onnxruntime as ort
import pytest
from onnxmltools.convert.common.data_types import FloatTensorType

from core.features import FEATURE_NAMES, N_FEATURES
from core.reference import sample_applicants
from models.generator import generate
from tests.support.file_log import log_lines
from tests.support.serving import Load, RunningApp, deploy, send_singles
from tests.test_resilience import record_figures, replica_pids

CHALLENGER_THRESHOLD = 0.1


@pytest.fixture(scope="module")
def challenger_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different model (60 trees on other data), zipmap output, no card and no LightGBM file beside it."""
    data = generate(20_000, seed=3)
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "verbose": -1, "seed": 3},
                        lgb.Dataset(data[list(FEATURE_NAMES)].to_numpy(np.float32), data["TARGET"]), 60)
    folder = tmp_path_factory.mktemp("challengers") / "zipmap-challenger"
    folder.mkdir()
    onx = onnxmltools.convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, N_FEATURES]))])
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    return folder


def challenger(folder: Path, mode: str, **extra: object) -> dict[str, object]:
    return {"mode": mode, "model": str(folder), "threshold": CHALLENGER_THRESHOLD, "require_monotonicity": False,
            **extra}   # an outside model without a card: no monotonicity sweep to check


def onnx_runtime_probabilities(folder: Path, rows: np.ndarray) -> np.ndarray:
    """The challenger's own output, read straight from ONNX Runtime (zipmap: a list of {label: p})."""
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    label, probabilities = session.get_outputs()
    maps = session.run([probabilities.name], {"input": rows.astype(np.float32)})[0]
    assert isinstance(maps, list), "the challenger must keep onnxmltools' default zipmap output"
    return np.array([m[1] for m in maps])


def logged(app: RunningApp, ids: set[str], timeout_s: float = 30) -> dict[str, dict]:
    """The file log's records of ``ids`` (waits until all are there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = {r["request_id"]: r for r in map(json.loads, log_lines(app.data_dir)) if r["request_id"] in ids}
        if len(records) == len(ids) or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def wait_mode(app: RunningApp, check: callable, timeout_s: float = 30) -> None:
    """Until a probe answer shows the ingresses follow the new challenger mode (they poll it every second)."""
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:   # other applicants each time: without a key, the applicant's data picks the model
        attempt += 1
        answers, _ = send_singles(app.url, sample_applicants(40, seed=99 + attempt), threads=4)
        records = logged(app, set(answers))
        if check(answers, records):
            return
        assert time.monotonic() < deadline, "the ingresses did not follow the challenger's mode"
        time.sleep(0.5)


def rows_of(applicants: list[dict]) -> np.ndarray:
    return np.array([[a[name] for name in FEATURE_NAMES] for a in applicants], dtype=np.float64)


def test_shadow_changes_no_answer_and_logs_both_scores(file_app: RunningApp, challenger_folder: Path) -> None:
    applicants = sample_applicants(500, seed=41)
    with file_app.client() as client:
        before = client.post("/predict/batch", json=applicants).json()["results"]
    deploy(file_app.url, file_app.env, challenger=challenger(challenger_folder, "shadow"))
    wait_mode(file_app, lambda _, records: all(r["challenger_probability"] is not None for r in records.values()))

    since = datetime.now(UTC).isoformat()
    with file_app.client() as client:
        after = client.post("/predict/batch", json=applicants).json()["results"]
    singles, failed = send_singles(file_app.url, applicants[:100])
    assert failed == 0
    assert [a["probability_default"] for a in after] == [b["probability_default"] for b in before]
    assert [a["credit_decision"] for a in after] == [b["credit_decision"] for b in before]
    assert {a["model_version"] for a in after} == {before[0]["model_version"]}

    ids = [a["request_id"] for a in after] + list(singles)
    records = logged(file_app, set(ids))
    assert len(records) == len(ids)
    expected = onnx_runtime_probabilities(challenger_folder, rows_of(applicants))
    shadow = np.array([records[a["request_id"]]["challenger_probability"] for a in after])
    assert np.abs(shadow - expected).max() < 1e-6
    assert all(records[i]["challenger_version"] == challenger_folder.name for i in ids)
    assert all(records[a["request_id"]]["probability_default"] == pytest.approx(a["probability_default"], abs=1e-6)
               for a in after)
    decisions = [records[a["request_id"]]["challenger_decision"] for a in after]
    assert decisions == ["denied" if p >= CHALLENGER_THRESHOLD else "approved" for p in shadow]

    with file_app.client() as client:
        report = client.get("/challenger", params={"since": since}, headers=file_app.auth()).json()
    (pair,) = report["pairs"]
    shadowed = [records[i] for i in ids]
    assert pair["challenger"] == challenger_folder.name and pair["decisions"] == len(shadowed)
    champion_denied = np.array([r["credit_decision"] == "denied" for r in shadowed])
    challenger_denied = np.array([r["challenger_decision"] == "denied" for r in shadowed])
    assert pair["agreement_rate"] == pytest.approx(np.mean(champion_denied == challenger_denied))


def test_challenger_stopped_or_killed_under_load_fails_no_champion_answer(
        file_app: RunningApp, challenger_folder: Path) -> None:
    deploy(file_app.url, file_app.env, challenger=challenger(challenger_folder, "shadow", timeout_s=0.5))
    wait_mode(file_app, lambda _, records: all(r["challenger_probability"] is not None for r in records.values()))
    (pid,) = replica_pids("Challenger")
    load = Load(file_app.url, connections=4).start()
    try:
        load.wait_for(200)
        os.kill(pid, signal.SIGSTOP)   # a hung challenger: calls pile up, then time out
        time.sleep(4)
        os.kill(pid, signal.SIGCONT)
        time.sleep(2)
        os.kill(pid, signal.SIGKILL)   # a dead one: Serve replaces it
        time.sleep(6)
    finally:
        load.stop()
    statuses = Counter(a.status for a in load.answers)
    assert set(statuses) == {200}, statuses
    ids = {a.body["request_id"] for a in load.answers}
    records = logged(file_app, ids)
    assert len(records) == len(ids), "an answered decision is missing from the log"
    missing = sum(r["challenger_probability"] is None for r in records.values())
    assert 0 < missing < len(records), "records must say when the challenger was missing, and only then"
    record_figures("challenger_stopped_and_killed", {"answered": len(ids), "non_200": 0,
                                                     "records_without_challenger": missing})


def test_canary_answers_its_share_and_a_key_always_gets_the_same_model(
        file_app: RunningApp, challenger_folder: Path) -> None:
    deploy(file_app.url, file_app.env, challenger=challenger(challenger_folder, "canary", canary_percent=10))
    wait_mode(file_app, lambda answers, _: any(a["model_version"] == challenger_folder.name
                                               for a in answers.values()))
    answers, failed = send_singles(file_app.url, sample_applicants(5000, seed=43), threads=16)
    assert failed == 0 and len(answers) == 5000
    share = sum(a["model_version"] == challenger_folder.name for a in answers.values()) / 5000
    assert 0.08 <= share <= 0.12, share
    records = logged(file_app, set(answers))
    assert all(records[i]["model_version"] == a["model_version"] for i, a in answers.items())

    applicant = sample_applicants(1, seed=44)[0]
    models: dict[str, set[str]] = {}
    with file_app.client() as client:
        for key in (f"applicant-{n}" for n in range(100)):
            for _ in range(3):
                body = client.post("/predict", json=applicant, headers={"X-Applicant-Key": key}).json()
                models.setdefault(key, set()).add(body["model_version"])
    assert all(len(versions) == 1 for versions in models.values()), "a key got both models"
    keyless: dict[int, set[str]] = {}   # no key: a resubmitted application gets the model it got before
    with file_app.client() as client:
        for n, applicant_data in enumerate(sample_applicants(50, seed=45)):
            for _ in range(3):
                keyless.setdefault(n, set()).add(client.post("/predict", json=applicant_data).json()["model_version"])
    assert all(len(versions) == 1 for versions in keyless.values()), "a resubmitted application got both models"
    assert 1 <= sum(challenger_folder.name in v for v in models.values()) <= 25
    record_figures("canary_10_percent", {"requests": 5000, "answered_by_challenger": round(share, 4)})


def test_adding_and_removing_the_challenger_under_load_fails_no_request(
        file_app: RunningApp, challenger_folder: Path) -> None:
    deploy(file_app.url, file_app.env, challenger={"mode": "disabled"})
    load = Load(file_app.url, connections=4).start()
    try:
        load.wait_for(100)
        for config in (challenger(challenger_folder, "shadow"), challenger(challenger_folder, "canary",
                                                                               canary_percent=50),
                       {"mode": "disabled"}):
            deploy(file_app.url, file_app.env, challenger=config)
            time.sleep(3)
    finally:
        load.stop()
    statuses = Counter(a.status for a in load.answers)
    assert set(statuses) == {200}, statuses
    versions = Counter(a.body["model_version"] for a in load.answers)
    assert challenger_folder.name in versions and len(versions) == 2, versions
    with httpx.Client(base_url=file_app.url, timeout=30) as client:
        assert client.get("/health").json()["status"] == "ok"
