"""`serve deploy` of an edited user_config swaps threshold and model in place, under load, with no failed request.

The model swap leaves both versions in the log, each answer logged with the version that produced it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from core import artifacts
from core.polling import wait_until
from core.reference import sample_applicants
from core.settings import PROJECT_ROOT
from tests.support.file_log import log_lines
from tests.support.serving import Load, RunningApp, deploy


def _under_load(app: RunningApp, applied: Callable[[dict], bool], **user_configs: dict) -> Load:
    """Redeploy with ``user_configs`` while traffic runs on 4 connections; stop once /health shows ``applied``."""
    load = Load(app.url).start()
    try:
        load.wait_for(20)
        deploy(app.url, app.env, **user_configs)
        wait_until(lambda: applied(httpx.get(f"{app.url}/health").json()), 60, "the new user_config to apply")
        load.wait_for(20)
    finally:
        load.stop()
    return load


def test_threshold_change_applies_without_failed_request(file_app: RunningApp) -> None:
    load = _under_load(file_app, lambda health: health["threshold"] == 0.5, scorer={"threshold": 0.5})
    assert len(load.statuses) >= 40 and set(load.statuses) == {200}
    thresholds = [a["threshold"] for a in load.bodies]
    assert thresholds[0] != 0.5 and thresholds[-1] == 0.5
    assert httpx.get(f"{file_app.url}/health").json()["threshold"] == 0.5
    with httpx.Client(base_url=file_app.url) as client:
        answer = client.post("/predict", json=sample_applicants(1, seed=1)[0]).json()
    assert answer["threshold"] == 0.5
    assert answer["credit_decision"] == ("denied" if answer["probability_default"] >= 0.5 else "approved")


def test_new_model_file_is_picked_up_without_failed_request(file_app: RunningApp, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "models.train", "--rows", "20000", "--seed", "9",
                    "--out", str(tmp_path), "--no-progress"], check=True, cwd=PROJECT_ROOT)
    new_dir = artifacts.resolve_model_dir(None, tmp_path)
    card = artifacts.load_card(new_dir)
    load = _under_load(file_app, lambda health: health["model_version"] == card["version"],
                       scorer={"model": str(new_dir), "threshold": None})
    assert len(load.statuses) >= 40 and set(load.statuses) == {200}
    health = httpx.get(f"{file_app.url}/health").json()
    assert health["model_version"] == card["version"]
    assert health["threshold"] == card["threshold"]["value"]
    versions = [a["model_version"] for a in load.bodies]
    assert versions[0] != card["version"] and versions[-1] == card["version"]
    answered = {a["request_id"]: a["model_version"] for a in load.bodies}
    def all_logged() -> dict[str, str] | None:
        found = _logged_versions(file_app.data_dir)
        return found if set(answered) <= set(found) else None

    logged = wait_until(all_logged, 30, "every answer in the log")
    assert all(logged[i] == v for i, v in answered.items())
    assert {versions[0], card["version"]} <= set(logged.values())


def _logged_versions(data_dir: Path) -> dict[str, str]:
    """model_version of every record in the file log, by request_id."""
    return {(row := json.loads(line))["request_id"]: row["model_version"] for line in log_lines(data_dir)}
