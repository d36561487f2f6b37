"""Faults under load, with real processes: a scorer replica killed, overload beyond the queue limits.

Figures (non-2xx counts, recovery times) are printed and written to ``test-artifacts/resilience.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from ray import serve

from core.settings import PROJECT_ROOT
from tests.conftest import API_KEY
from tests.support.serving import APP_NAME, Load, RunningApp, deploy

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def record_figures(name: str, figures: dict) -> None:
    """Merge ``figures`` under ``name`` into test-artifacts/resilience.json and print them."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "resilience.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(current | {name: figures}, indent=2))
    print(name, figures)


def running_scorers() -> int:
    status = serve.status().applications[APP_NAME].deployments["Scorer"]
    return status.replica_states.get("RUNNING", 0)


def replica_pids(deployment: str) -> list[int]:
    """Process ids of this app's replicas of ``deployment`` (Ray titles worker processes by actor class)."""
    out = subprocess.run(["pgrep", "-f", f"ServeReplica:{APP_NAME}:{deployment}"], capture_output=True, text=True)
    ours = os.readlink("/proc/self/ns/pid")   # not a container's replicas (the compose stack runs the same app)
    return [int(p) for p in out.stdout.split() if _pid_namespace(int(p)) == ours]


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def scorer_pids() -> list[int]:
    return replica_pids("Scorer")


def rss_mb(pids: list[int]) -> float:
    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


@pytest.fixture(scope="module")
def two_scorers(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir: Path = tmp_path_factory.mktemp("data")
    env = {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": ""}
    deploy(serve_url, env, {"Scorer": {"num_replicas": 2}})
    deadline = time.monotonic() + 60
    while running_scorers() < 2:
        assert time.monotonic() < deadline, "two scorer replicas not running after 60 s"
        time.sleep(0.5)
    yield RunningApp(serve_url, data_dir, API_KEY, env)
    serve.delete(APP_NAME)


def test_killed_scorer_replica_is_replaced_and_requests_keep_succeeding(two_scorers: RunningApp) -> None:
    pids = scorer_pids()
    assert len(pids) == 2, pids
    load = Load(two_scorers.url, connections=8).start()
    try:
        load.wait_for(200)
        killed_at = time.monotonic()
        os.kill(pids[0], signal.SIGKILL)
        deadline = killed_at + 90   # the slow tier shares 2 cores with four more replicas
        while running_scorers() < 2 or set(scorer_pids()) == {pids[1]}:
            assert time.monotonic() < deadline, "scorer replica not replaced within 90 s"
            time.sleep(0.2)
        recovered_s = time.monotonic() - killed_at
        load.wait_for(200)
    finally:
        load.stop()
    failed = [a for a in load.answers if a.status != 200]
    after_kill = [a for a in load.answers if a.sent_at >= killed_at]
    record_figures("kill_scorer_replica", {
        "requests": len(load.answers), "requests_after_kill": len(after_kill), "non_2xx": len(failed),
        "replica_back_after_s": round(recovered_s, 2)})
    # The ingress re-sends a block whose scorer died, so at most the in-flight requests may fail.
    assert len(failed) <= load.connections, [a.status for a in failed]
    assert all(a.status == 200 for a in load.answers if a.sent_at > killed_at + 5)


def test_overload_beyond_queue_limits_is_503_with_retry_after(serve_url: str, tmp_path: Path) -> None:
    """A tiny in-flight limit and a slowed scorer; 64 connections push far past it: fast 503s, never a hang."""
    serve.delete(APP_NAME)   # a fresh app: every replica starts with the limits below
    env = {"DATA_DIR": str(tmp_path), "API_KEY": API_KEY, "DATABASE_URL": ""}
    deploy(serve_url, env, ingress={"max_in_flight_requests": 4}, scorer={"batch_wait_timeout_s": 0.05})
    ingresses = replica_pids("Ingress")
    rss_before = rss_mb(ingresses)
    load = Load(serve_url, connections=64, timeout_s=10).start()
    try:
        time.sleep(8)
        rss_during = rss_mb(ingresses)
    finally:
        load.stop()
    statuses = load.statuses
    rejected = [a for a in load.answers if a.status == 503]
    record_figures("overload", {
        "requests": len(statuses), "ok": statuses.count(200), "rejected_503": len(rejected),
        "other": len(statuses) - statuses.count(200) - len(rejected),
        "ingress_rss_mb_before": round(rss_before), "ingress_rss_mb_during": round(rss_during)})
    assert rejected, "no request was shed"
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert all(a.retry_after for a in rejected)
    assert rss_during - rss_before < 200, "ingress memory grew under overload"
    with httpx.Client(base_url=serve_url, timeout=10) as client:
        assert client.get("/health").status_code == 200   # serving again at once
