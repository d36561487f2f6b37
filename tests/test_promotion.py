"""``python -m models.promote`` through the README's run (``serve_app.run``), shadow traffic and outcomes from
``monitoring.traffic``: a candidate trained on more data passes every gate and is applied under load with no failed
request, the audit record carries the evidence digest, ``--rollback`` restores the champion; a candidate without the
external scores, a card without a validation block, and a candidate on the ``fairness`` scenario are each refused
naming the gate, with nothing applied."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.artifacts import CARD_FILE
from core.settings import PROJECT_ROOT
from loadtest.server_process import ServerConfig, ServerProcess
from models.serve_config_edit import set_user_config
from monitoring.scenarios import GROUP_ATTRIBUTE
from tests.support.serving import Load

API_KEY = "promotion-test-key-0123456789"
EXTERNAL_SCORES = ("EXT_SOURCE_2", "EXT_SOURCE_3", "EXT_SOURCES_MEAN", "EXT_SOURCES_WEIGHTED")
VALIDATION = {"validator": "A. Validator", "date": "2026-12-01",
              "intended_use": "Consumer instalment loans, applicants as in the training population",
              "limitations": "Synthetic training data; not validated for small-business credit",
              "findings": "Discrimination and calibration at least the champion's on the holdout"}


def train(out: Path, *args: str) -> Path:
    """A model folder from ``models.train``, with an independent validation recorded on its card."""
    subprocess.run([sys.executable, "-m", "models.train", "--out", str(out), "--no-progress", *args],
                   cwd=PROJECT_ROOT, check=True, timeout=1200, capture_output=True)
    folder = out / (out / "LATEST").read_text().strip()
    card = json.loads((folder / CARD_FILE).read_text())
    (folder / CARD_FILE).write_text(json.dumps({**card, "validation": VALIDATION}, indent=2))
    return folder


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("candidates")
    better = train(root / "better", "--rows", "400000", "--seed", "43")   # the champion saw 307,511
    worse = train(root / "worse", "--rows", "100000", "--seed", "44",
                  *(arg for name in EXTERNAL_SCORES for arg in ("--drop-feature", name)))
    other = train(root / "other", "--rows", "100000", "--seed", "45")
    unvalidated = root / "unvalidated" / better.name
    shutil.copytree(better, unvalidated)
    card = json.loads((unvalidated / CARD_FILE).read_text())
    del card["validation"]
    (unvalidated / CARD_FILE).write_text(json.dumps(card, indent=2))
    return {"better": better, "worse": worse, "other": other, "unvalidated": unvalidated}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("promotion")
    env = {"API_KEY": API_KEY, "DATA_DIR": str(root / "data"), "DATABASE_URL": "", "REPORTS_DIR": str(root)}
    process = ServerProcess(ServerConfig("promotion"), env=env, log=root / "serve.log").start()
    yield process
    process.stop()


def shadow(server: ServerProcess, folder: Path) -> None:
    """The candidate as the shadow challenger (an operator's edit of serve_config.yaml and ``serve deploy``)."""
    config = server.state_dir / "serve_config.yaml"
    set_user_config(config, "Challenger", {"mode": "shadow", "model": str(folder)})
    done = server.serve_cli("deploy", str(config))
    assert done.returncode == 0, done.stderr
    time.sleep(5)   # the ingresses read the challenger's mode every second; its model loads first


def traffic(server: ServerProcess, scenario: str, rows: int, seed: int) -> None:
    """``monitoring.traffic api`` with every outcome and group posted."""
    subprocess.run([sys.executable, "-m", "monitoring.traffic", "api", "--scenario", scenario, "--rows", str(rows),
                    "--seed", str(seed), "--no-ramp", "--outcomes", "--groups", "--no-progress",
                    "--host", server.url], cwd=PROJECT_ROOT, env={**server.env, "API_KEY": API_KEY}, check=True,
                   timeout=900, capture_output=True)


def promote(server: ServerProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "models.promote", *args,
                           "--config", str(server.state_dir / "serve_config.yaml"),
                           "--address", f"http://127.0.0.1:{server.dashboard_port}"],
                          cwd=PROJECT_ROOT, env={**server.env, "API_URL": server.url, **env}, capture_output=True,
                          text=True, timeout=900)


def since(started: float) -> str:
    """A window of days reaching back to ``started`` (and a minute more): one candidate's traffic, not the last's."""
    return f"{(time.time() - started + 60) / 86_400:.6f}"


def health(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{server.url}/health", timeout=30).json()


def changes(server: ServerProcess) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/model/changes", params={"limit": 50}, headers={"X-API-Key": API_KEY},
                       timeout=30)
    return answer.json()["items"]


@pytest.mark.slow
def test_promotion_through_the_gates_and_back(server: ServerProcess, candidates: dict[str, Path]) -> None:
    champion = health(server)["model_version"]
    config = server.state_dir / "serve_config.yaml"

    shadow(server, candidates["worse"])
    traffic(server, "control", 20_000, seed=11)
    before = config.read_text()
    refused = promote(server, str(candidates["worse"]))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "FAILED  auc_non_inferior" in refused.stdout and "nothing applied" in refused.stderr
    assert config.read_text() == before and health(server)["model_version"] == champion

    refused = promote(server, str(candidates["unvalidated"]))
    assert refused.returncode == 1
    assert "FAILED  validation: validation: the card records no validation block" in refused.stdout
    assert config.read_text() == before and health(server)["model_version"] == champion

    shadow(server, candidates["better"])
    started = time.time()
    traffic(server, "control", 20_000, seed=12)
    load = Load(server.url, connections=4).start()
    try:
        applied = promote(server, str(candidates["better"]), PROMOTION_WINDOW_DAYS=since(started))
    finally:
        load.stop()
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "FAILED" not in applied.stdout
    assert health(server)["model_version"] == candidates["better"].name
    assert load.answers and all(a.status == 200 for a in load.answers), \
        sorted({a.status for a in load.answers})
    digest = applied.stdout.split("sha256 ")[1].split(")")[0]
    report = json.loads(Path(applied.stdout.split("evidence report ")[1].split(" (sha256")[0]).read_text())
    assert report["digest"] == digest and report["passed"]
    applied_entries = [c for c in changes(server) if c["event"] == "applied" and c["deployment"] == "Scorer"]
    assert digest in applied_entries[0]["note"] and applied_entries[0]["to_version"] == candidates["better"].name

    load = Load(server.url, connections=4).start()
    try:
        back = promote(server, "--rollback")
    finally:
        load.stop()
    assert back.returncode == 0, back.stdout + back.stderr
    assert health(server)["model_version"] == champion
    assert all(a.status == 200 for a in load.answers)
    assert "rollback of" in changes(server)[0]["note"] or any(
        "rollback of" in (c["note"] or "") for c in changes(server)[:4])

    # another validated model, shadowing only applicants where group B is scored lower (fairness figures are kept
    # per challenger version and whole day: a version of its own keeps the control traffic out of its evidence)
    shadow(server, candidates["other"])
    started = time.time()
    traffic(server, "fairness", 6_000, seed=13)
    refused = promote(server, str(candidates["other"]), PROMOTION_WINDOW_DAYS=since(started),
                      PROMOTION_MIN_SHADOWED="1000")
    assert refused.returncode == 1
    assert f"FAILED  adverse_impact: below 0.8: {GROUP_ATTRIBUTE}/B" in refused.stdout, refused.stdout
    assert health(server)["model_version"] == champion
    assert os.stat(Path(server.env["DATA_DIR"]) / "promotions.jsonl").st_mode & 0o077 == 0
