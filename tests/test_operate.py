"""Operating the README's run (``python -m serve_app.run``) with ``serve deploy``/``serve status``, under load.

A model folder the project never trained (LightGBM converted with onnxmltools' default zipmap output, with its own card)
is swapped in with no failed request and each block decided by one version; bad changes (a missing folder, a card
threshold of NaN / 0 / 1.5, a ``model.onnx`` whose SHA-256 differs from its card, the malformed folders of
``tests/support/malformed_models.py``, an out-of-range batching value) are refused while the running model keeps
answering 200, each named in ``/health`` without a path; the challenger goes disabled → shadow → canary → disabled;
Prometheus text from the fixed metrics port shows ``ray_credit_decisions_total`` moving with the traffic. Each applied
and refused change is in the audit record (``GET /model/changes``) with what it changed from and to.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import onnxmltools
import pytest
from onnxmltools.convert.common.data_types import FloatTensorType

from core.artifacts import CARD_FILE, ONNX_FILE, resolve_model_dir
from core.features import FEATURE_NAMES, N_FEATURES
from core.polling import wait_until
from core.reference import sample_applicants
from loadtest.bench_hostile import HOSTILE_BODY
from loadtest.server_process import ServerConfig, ServerProcess
from models.generator import generate
from models.loader import sha256_of
from tests.conftest import API_KEY
from tests.support.malformed_models import malformed_folders
from tests.support.own_model import trained_german
from tests.support.serving import Load
from tests.test_alert_rules import rule_metrics
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow

OLD_KEY, NEW_KEY = "read-key-old-0123456789", "read-key-new-9876543210"
APPLY_DEADLINE_S = 120
"""Generous for a loaded CI VM: a new model is loaded and checked (~1 s measured) before the swap."""


def foreign_model(folder: Path) -> Path:
    """A LightGBM the project never trained, converted with onnxmltools' defaults (zipmap output), with a card."""
    data = generate(20_000, seed=99)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1},
        lgb.Dataset(data[list(FEATURE_NAMES)], data["TARGET"]),
        num_boost_round=30,
    )
    onx = onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, N_FEATURES]))], target_opset=15
    )  # zipmap=True by default
    folder.mkdir(parents=True)
    (folder / ONNX_FILE).write_bytes(onx.SerializeToString())
    card = {
        "version": "foreign-zipmap-1",
        "threshold": {"value": 0.12},
        "artifacts": {ONNX_FILE: sha256_of(folder / ONNX_FILE)},
    }
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def bad_folders(root: Path) -> dict[str, Path | str]:
    """Changes that must be refused: name → model (a folder, or a name that is none)."""
    bad: dict[str, Path | str] = {"missing folder": "no-such-model-folder"}
    for name, value in {"NaN threshold": float("nan"), "zero threshold": 0, "threshold 1.5": 1.5}.items():
        folder = root / name.replace(" ", "-")
        shutil.copytree(resolve_model_dir(None), folder)
        card = json.loads((folder / CARD_FILE).read_text())
        card["threshold"]["value"] = value
        (folder / CARD_FILE).write_text(json.dumps(card))
        bad[name] = folder
    tampered = root / "tampered"
    shutil.copytree(resolve_model_dir(None), tampered)
    data = bytearray((tampered / ONNX_FILE).read_bytes())
    data[-1] ^= 1
    (tampered / ONNX_FILE).write_bytes(bytes(data))
    bad["model.onnx SHA-256 differs"] = tampered
    unknown_type = root / "schema-unknown-type"
    shutil.copytree(resolve_model_dir(None), unknown_type)
    card = json.loads((unknown_type / CARD_FILE).read_text())
    card["schema"]["features"][0]["type"] = "float64"
    (unknown_type / CARD_FILE).write_text(json.dumps(card))
    bad["schema: a feature of an unknown type"] = unknown_type
    bad["another schema (a lender's German credit model)"] = trained_german(root)
    return bad | malformed_folders(root)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("operate")
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "api_keys").write_text(f"read:{OLD_KEY}\n")
    env = {
        "DATA_DIR": str(root / "data"),
        "API_KEY": API_KEY,
        "DATABASE_URL": "",
        "CREDIT_SECRETS_DIR": str(secrets),
        "TMPDIR": tempfile.mkdtemp(prefix="op-", dir="/tmp"),
    }
    process = ServerProcess(ServerConfig("operate"), env=env, log=root / "serve.log").start()
    try:
        yield process
    finally:
        process.stop()


def _health(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{server.url}/health", timeout=10).json()


def _audit_entry(server: ServerProcess, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The newest entry of the model-change audit record that ``match``es (delivered within a second or two)."""

    def found() -> dict[str, Any] | None:
        items = httpx.get(f"{server.url}/model/changes", headers={"X-API-Key": API_KEY}, timeout=30).json()["items"]
        return next((e for e in items if match(e)), None)

    return wait_until(found, timeout_s=APPLY_DEADLINE_S, what="the change in the audit record")


def _deploy_under_load(
    server: ServerProcess, name: str, deployments: dict[str, dict[str, Any]], applied: Callable[[dict[str, Any]], Any]
) -> Load:
    load = Load(server.url, connections=4).start()
    try:
        load.wait_for(50, timeout_s=60)
        done = server.deploy(ServerConfig(name, deployments=deployments))
        assert done.returncode == 0, done.stderr
        wait_until(lambda: applied(_health(server)), timeout_s=APPLY_DEADLINE_S, what=f"{name} to be applied")
        load.wait_for(200, timeout_s=60)
    finally:
        load.stop()
    return load


def test_serve_status_reaches_the_readme_run(server: ServerProcess) -> None:
    status = server.serve_cli("status")
    assert status.returncode == 0, status.stderr
    assert "credit" in status.stdout and "RUNNING" in status.stdout


def test_bad_changes_are_refused_and_the_model_keeps_answering(server: ServerProcess, tmp_path: Path) -> None:
    before = _health(server)
    figures: dict[str, Any] = {}
    for name, model in bad_folders(tmp_path).items():
        load = _deploy_under_load(
            server,
            f"bad-{len(figures)}",
            {"Scorer": {"user_config": {"model": str(model)}}},
            lambda h: h.get("change_refused"),
        )
        health = _health(server)
        statuses = Counter(load.statuses)
        figures[name] = {"statuses": dict(statuses), "refused": health["change_refused"]}
        assert set(statuses) == {200}, (name, statuses)
        assert "/" + tmp_path.parts[1] not in (health["change_refused"] or ""), health["change_refused"]
        assert health["model_version"] == before["model_version"] and health["threshold"] == before["threshold"]
        assert {b["model_version"] for b in load.bodies} == {before["model_version"]}
        entry = _audit_entry(server, lambda e, model=model: e["event"] == "refused" and e["to_version"] == str(model))
        assert entry["from_version"] == before["model_version"] and entry["reason"] == health["change_refused"]
        server.deploy(ServerConfig("restore", deployments={}))  # the rollback the README documents
        wait_until(
            lambda: _health(server)["change_refused"] is None, timeout_s=APPLY_DEADLINE_S, what="the rollback to apply"
        )
    assert "schema.features[0].type: 'float64'" in figures["schema: a feature of an unknown type"]["refused"]
    assert "its schema is not this application's (without EXT_SOURCES_MEAN" in \
        figures["another schema (a lender's German credit model)"]["refused"]
    load = _deploy_under_load(
        server, "bad-batching", {"Ingress": {"user_config": {"max_batch_size": 0}}}, lambda h: True
    )
    assert set(load.statuses) == {200}
    record_figures("operate_bad_changes", figures)


def test_a_foreign_zipmap_model_is_swapped_in_under_load(server: ServerProcess, tmp_path: Path) -> None:
    folder = foreign_model(tmp_path / "foreign")
    before = _health(server)["model_version"]
    load = _deploy_under_load(
        server,
        "foreign",
        {
            "Scorer": {
                "user_config": {"model": str(folder), "require_monotonicity": False, "change_note": "ticket MRM-42"}
            }
        },
        lambda h: h["model_version"] == "foreign-zipmap-1",
    )
    statuses = Counter(load.statuses)
    versions = Counter(b["model_version"] for b in load.bodies)
    record_figures("operate_model_swap", {"statuses": dict(statuses), "versions": dict(versions)})
    assert set(statuses) == {200}, statuses
    assert set(versions) <= {before, "foreign-zipmap-1"} and versions["foreign-zipmap-1"] > 0
    assert all(
        b["threshold"] == (0.12 if b["model_version"] == "foreign-zipmap-1" else b["threshold"]) for b in load.bodies
    )  # each answer carries its own model's rule
    entry = _audit_entry(server, lambda e: e["event"] == "applied" and e["to_version"] == "foreign-zipmap-1")
    assert (entry["from_version"], entry["to_threshold"], entry["note"]) == (before, 0.12, "ticket MRM-42")
    server.deploy(ServerConfig("restore", deployments={}))
    wait_until(lambda: _health(server)["model_version"] == before, timeout_s=APPLY_DEADLINE_S, what="the rollback")


def _probe(server: ServerProcess) -> dict[str, Any]:
    from core.features import EXAMPLE_APPLICANT

    return httpx.post(f"{server.url}/predict", json=EXAMPLE_APPLICANT, timeout=30).json()


def test_challenger_modes_switch_by_serve_deploy(server: ServerProcess) -> None:
    """A challenger with threshold 0.5 (same model): its answers are told apart by their threshold."""
    champion = _health(server)
    challenger = {"model": champion["model_version"], "threshold": 0.5}
    steps: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]] = [
        ("shadow", challenger, lambda h: True),
        ("canary", {**challenger, "canary_percent": 100.0}, lambda h: _probe(server)["threshold"] == 0.5),
        ("disabled", {}, lambda h: _probe(server)["threshold"] == champion["threshold"]),
    ]
    figures = {}
    for mode, user_config, applied in steps:
        load = _deploy_under_load(
            server, f"challenger-{mode}", {"Challenger": {"user_config": {"mode": mode, **user_config}}}, applied
        )
        report = httpx.get(f"{server.url}/challenger", headers={"X-API-Key": API_KEY}, timeout=30)
        figures[mode] = {"statuses": dict(Counter(load.statuses)), "challenger_report": report.status_code}
        assert set(load.statuses) == {200}, (mode, load.statuses)
        assert report.status_code == 200
    record_figures("operate_challenger", figures)


def test_prometheus_text_from_the_fixed_metrics_port_moves_with_traffic(server: ServerProcess) -> None:
    def decisions() -> float:
        text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).text
        return sum(float(v) for v in re.findall(r"^ray_credit_decisions_total\{[^}]*\} ([0-9.e+]+)$", text, re.M))

    start = wait_until(lambda: decisions() or 0.001, timeout_s=60, what="the metrics port to answer")
    load = Load(server.url, connections=2).start()
    try:
        load.wait_for(300, timeout_s=60)
    finally:
        load.stop()
    wait_until(lambda: decisions() >= start + 300, timeout_s=60, what="ray_credit_decisions_total to move")
    # the monitoring gauges need labelled decisions and a run after them: outcomes, then a shorter interval
    # applied by serve deploy (a run follows at once)
    with httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": API_KEY}) as client:
        answered = client.post("/predict/batch", json=sample_applicants(400, seed=9)).json()["results"]
        ids = [r["request_id"] for r in answered]
        body = [{"request_id": i, "defaulted": n % 2} for n, i in enumerate(ids)]
        # an outcome needs its decision in the log (shipped within a flush interval); a repeated post is idempotent
        wait_until(
            lambda: not client.post("/outcomes", json=body).raise_for_status().json()["unknown_request_ids"],
            timeout_s=60,
            what="the decisions in the log for their outcomes",
        )
    done = server.deploy(
        ServerConfig("monitoring", deployments={"LogWriter": {"user_config": {"monitoring_interval_s": 5}}})
    )
    assert done.returncode == 0, done.stderr
    gauges = {m for m in rule_metrics() if not m.endswith("_total")}  # a counter appears once incremented

    def missing() -> set[str]:
        text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).text
        return gauges - set(re.findall(r"^(ray_credit_[a-z_]+)", text, re.M))

    # the alert rules watch what the server exports (Ray reports every 10 s; a run reads a day of decisions)
    wait_until(lambda: not missing() or None, timeout_s=120, what=f"gauges the alert rules name: {missing()}")
    runs = httpx.get(f"{server.url}/monitoring/runs", headers={"X-API-Key": API_KEY}, timeout=30).json()["items"]
    assert runs[0]["labelled"] >= 400 and set(runs[0]["psi"]) == set(FEATURE_NAMES)


def test_a_key_rotated_in_the_secrets_folder_applies_without_a_failed_request(server: ServerProcess) -> None:
    """As docs/operations.md documents it: add the new key to API_KEYS, move the clients, remove the old one."""
    secrets = Path(server.env["CREDIT_SECRETS_DIR"])

    def status(key: str) -> int:
        return httpx.get(f"{server.url}/predictions?limit=1", headers={"X-API-Key": key}, timeout=30).status_code

    assert status(OLD_KEY) == 200 and status(NEW_KEY) == 401
    load = Load(server.url, connections=4).start()
    try:
        (secrets / "api_keys").write_text(f"read:{OLD_KEY} read:{NEW_KEY}\n")
        wait_until(lambda: status(NEW_KEY) == 200, timeout_s=60, what="the new key to be accepted")
        assert status(OLD_KEY) == 200  # both valid while clients move
        (secrets / "api_keys").write_text(f"read:{NEW_KEY}\n")
        wait_until(lambda: status(OLD_KEY) == 401, timeout_s=60, what="the old key to be refused")
        assert status(NEW_KEY) == 200
        load.wait_for(100, timeout_s=60)
    finally:
        load.stop()
    assert set(load.statuses) == {200}, Counter(load.statuses)


def test_keyless_clients_looping_on_bad_bodies_are_paced(server: ServerProcess) -> None:
    """Issue 24's amplification body from 8 keyless clients at once: every answer a small 422, those past the
    budget paced (the metric says so), and a valid request still answered 200 meanwhile."""

    def paced() -> float:
        text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).text
        return sum(
            float(v)
            for v in re.findall(r'^ray_credit_rejections_total\{[^}]*pace="delayed"[^}]*\} ([0-9.e+]+)$', text, re.M)
        )

    before = paced()

    def hostile(_: int) -> list[tuple[int, int]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return [
                (
                    (
                        r := client.post(
                            "/predict/batch", content=HOSTILE_BODY, headers={"content-type": "application/json"}
                        )
                    ).status_code,
                    len(r.content),
                )
                for _ in range(12)
            ]

    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(hostile, range(8))
        single = httpx.post(f"{server.url}/predict", json=sample_applicants(1, seed=2)[0], timeout=60)
        answers = [a for client in answers for a in client]
    assert single.status_code == 200, single.text
    assert {status for status, _ in answers} == {422} and max(size for _, size in answers) < 64 << 10
    # 96 rejections in a few seconds against rejections_per_s (10) per replica: the burst goes free, then each
    # client waits a second per answer (measured: 11 of 48 delayed with 6 each); Ray reports every 10 s
    wait_until(lambda: paced() >= before + 8, timeout_s=60, what="ray_credit_rejections_total{pace=delayed} to move")
