"""Smoke run of the load test: the locustfile and ``python -m loadtest.bench`` work end to end (low load)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from tests.support.serving import RunningApp

pytestmark = pytest.mark.slow   # starts real processes (Ray, PostgreSQL, a browser, Locust or training)


def test_bench_runs_every_scenario_and_counts_logged_decisions(file_app: RunningApp, tmp_path: Path) -> None:
    env = {**os.environ, **file_app.env, "LOADTEST_INVALID_SHARE": "0.2"}
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--host", file_app.url, "--scenarios", "single,batch,mixed",
         "--users", "2", "--batch-users", "1", "--duration", "3", "--batch-size", "20", "--mixed-batch-size", "5",
         "--out", str(tmp_path)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    report = json.loads((tmp_path / "bench.json").read_text())
    results = {r["scenario"]: r for r in report["runs"][0]["results"]}
    assert set(results) == {"single", "batch", "mixed"}
    for result in results.values():
        assert result["aggregated"]["requests"] > 0 and result["error_rate"] == 0
        assert result["log"]["records_logged"] == result["decisions_2xx"] > 0
        assert result["load_generator"]["cpu_cores_used"] > 0
        assert (tmp_path / "locust" / result["html"]).stat().st_size > 1000
    invalid = results["single"]["endpoints"]["POST /predict (invalid)"]
    assert invalid["requests"] > 0 and invalid["failures"] == 0          # every one answered 422
    assert results["batch"]["decisions_2xx"] == 20 * results["batch"]["endpoints"]["POST /predict/batch"]["requests"]
    mixed = results["mixed"]["endpoints"]
    assert {"GET /predictions", "GET /health"} <= set(mixed)
    batches = mixed.get("POST /predict/batch", {"requests": 0})["requests"]
    assert results["mixed"]["decisions_2xx"] == mixed["POST /predict"]["requests"] + 5 * batches
    assert "| single | 2 |" in (tmp_path / "bench.md").read_text()
