"""The README's multi-node path on one machine: ``ray start --head``, ``ray start --address=…`` for a
worker, ``serve deploy`` of serve_config.yaml with an autoscaling scorer; the scorer replicas land on
both nodes and both score traffic (each node's metrics agent reports rows scored)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from core.ports import free_port
from core.reference import sample_applicants
from core.settings import PROJECT_ROOT
from tests.conftest import API_KEY
from tests.support.ray_nodes import RayNodes, ray_cluster
from tests.support.serving import wait_healthy
from tests.test_metrics import scrape, total
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow   # starts real processes (Ray, PostgreSQL, a browser, Locust or training)

SCORER = "ServeReplica:credit:Scorer"
LOG_WRITER = "ServeReplica:credit:LogWriter"


def cluster_config(port: int, data_dir: Path) -> dict:
    """serve_config.yaml as an operator adapts it for the cluster: autoscaling scorer, one CPU per replica."""
    config = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    app = config["applications"][0]
    app["runtime_env"] = {"env_vars": {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": ""}}
    for deployment in app["deployments"]:
        if deployment["name"] == "Scorer":
            deployment.pop("num_replicas", None)
            deployment["autoscaling_config"] = {"min_replicas": 2, "max_replicas": 4, "target_ongoing_requests": 8}
            deployment["ray_actor_options"] = {"num_cpus": 1}   # one per node: the nodes have one CPU each
    return config


def running_replicas(nodes: RayNodes) -> dict[str, int]:
    """RUNNING replicas per deployment, as ``serve status`` reports them."""
    deployments = yaml.safe_load(nodes.serve("status"))["applications"]["credit"]["deployments"]
    return {name: d.get("replica_states", {}).get("RUNNING", 0) for name, d in deployments.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayNodes, str]]:
    with ray_cluster(workers=1, num_cpus=1) as nodes:
        port = free_port()
        config = tmp_path_factory.mktemp("cluster") / "serve_config.yaml"
        config.write_text(yaml.safe_dump(cluster_config(port, tmp_path_factory.mktemp("data"))))
        nodes.serve("deploy", str(config))
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, timeout_s=180)
        deadline = time.monotonic() + 180
        while running_replicas(nodes) != {
            "Ingress": 2,
            "Scorer": 2,
            "Challenger": 1,
            "LogWriter": 1,
        }:  # /health: first replica
            assert time.monotonic() < deadline, f"replicas not running after 180 s: {running_replicas(nodes)}"
            time.sleep(1)
        yield nodes, url


def test_scorer_replicas_spread_over_both_nodes_and_score(cluster: tuple[RayNodes, str]) -> None:
    nodes, url = cluster
    node_ids = {node["node_id"] for node in nodes.nodes()}
    replica_nodes = nodes.replica_nodes(SCORER)
    assert len(node_ids) == 2 and len(replica_nodes) == 2
    assert set(replica_nodes) == node_ids, "scorer replicas are not on both nodes"
    head = next(node["node_id"] for node in nodes.nodes() if node["is_head_node"])
    assert nodes.replica_nodes(LOG_WRITER) == [head], "the log writer (file log, spool) belongs on the head"

    applicants = sample_applicants(64, seed=7)
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(20):  # batches: each one a scorer call, spread by Serve's router
            response = client.post("/predict/batch", json=applicants)
            assert response.status_code == 200
        assert client.post("/predict", json=applicants[0]).status_code == 200

    deadline = time.monotonic() + 60
    while True:  # each node's metrics agent reports the rows its own scorer replica scored
        rows = [total(scrape(u), "ray_credit_scorer_rows_total") for u in nodes.metrics_urls()]
        if all(r > 0 for r in rows) and sum(rows) == 20 * 64 + 1 or time.monotonic() > deadline:
            break
        time.sleep(1)
    record_figures("multi_node", {"nodes": 2, "scorer_replicas": len(replica_nodes), "rows_scored_per_node": rows})
    assert sum(rows) == 20 * 64 + 1 and all(r > 0 for r in rows), rows


def test_cluster_serves_the_readme_status(cluster: tuple[RayNodes, str]) -> None:
    nodes, _ = cluster
    status = yaml.safe_load(nodes.serve("status"))
    app = status["applications"]["credit"]
    assert app["status"] == "RUNNING"
    assert {name: d["status"] for name, d in app["deployments"].items()} == {
        "Ingress": "HEALTHY",
        "Scorer": "HEALTHY",
        "Challenger": "HEALTHY",
        "LogWriter": "HEALTHY",
    }


def test_cluster_refuses_whoever_lacks_its_token(cluster: tuple[RayNodes, str]) -> None:
    """Token authentication is on: the state and Jobs APIs (a job is arbitrary code) answer 401 without the
    token and 403 with a wrong one; the ``serve`` CLI and a driver connecting to the GCS fail without it."""
    nodes, _ = cluster
    assert nodes.state("nodes").status_code == 200
    assert nodes.state("nodes", token=None).status_code == 401
    assert nodes.state("nodes", token="0" * 64).status_code == 403
    job = {"entrypoint": "python -c 'print(1)'"}
    assert httpx.post(f"{nodes.dashboard_url}/api/jobs/", json=job, timeout=30).status_code == 401
    without_token = {k: v for k, v in nodes.env.items() if k != "RAY_AUTH_TOKEN"}
    serve_cli = str(Path(sys.executable).with_name("serve"))
    status = subprocess.run(
        [serve_cli, "status", f"--address={nodes.dashboard_url}"],
        env=without_token,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode != 0 and "authentication" in (status.stdout + status.stderr).lower()
    driver = subprocess.run(  # a refused driver may retry for a while: 60 s, then it is stopped
        [
            "timeout",
            "60",
            sys.executable,
            "-c",
            f"import ray; ray.init(address='127.0.0.1:{nodes.gcs_port}'); print('CONNECTED', len(ray.nodes()))",
        ],
        env={**without_token, "RAY_AUTH_TOKEN": "0" * 64},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert driver.returncode != 0 and "CONNECTED" not in driver.stdout, driver.stdout[-2000:]
