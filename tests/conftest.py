"""Shared fixtures: the HTTP routes in-process (fast tier); one Ray instance per session with the Serve app over
real HTTP, and throwaway PostgreSQL clusters (slow tier).

Tiers: ``uv run pytest -m "not slow"`` is the everyday loop (no Ray, no PostgreSQL, no browser, no Locust;
checked at the end of the run); ``uv run pytest`` runs everything. A test is slow when it uses a fixture in
``SLOW_FIXTURES`` (marked here automatically) or its module says ``pytestmark = pytest.mark.slow``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.ports import free_port
from core.settings import PROJECT_ROOT
from loadtest.server_env import private_ingress_env, read_env_file
from tests.support.in_process import InProcessBackend, serving
from tests.support.pg_cluster import PgCluster
from tests.support.serving import APP_NAME, RunningApp, deploy

API_KEY = "test-api-key-0123456789"
SLOW_FIXTURES = frozenset({"serve_url", "metrics_url", "file_app", "pg", "pg_app"})
"""Fixtures that start Ray or PostgreSQL."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _ray_processes() -> list[str]:
    import psutil

    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            names.append(" ".join(child.cmdline()[:2]))
        except psutil.Error:
            continue
    return [n for n in names if "raylet" in n or "gcs_server" in n or "ray::" in n]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast tier must not start Ray: fail the run if it did."""
    if "not slow" not in (session.config.getoption("markexpr") or ""):
        return
    ray = sys.modules.get("ray")
    started = (ray is not None and ray.is_initialized()) or _ray_processes()
    if started:
        session.config.get_terminal_reporter().write_line(  # type: ignore[attr-defined]
            f"FAST TIER STARTED RAY: {started}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, InProcessBackend]]:
    """The real routes and the real prediction log (a file log in a temporary folder), in this process: no Ray."""
    backend = InProcessBackend(tmp_path_factory.mktemp("data"), API_KEY)
    with serving(backend) as client:
        yield client, backend


@pytest.fixture(scope="session")
def serve_url() -> Iterator[str]:
    """A local Ray instance (random ports) with Serve's HTTP ingress on a free loopback port.

    Ray starts with ``serve.env`` (HAProxy + direct ingress, throughput-optimised replicas), as
    the README's run command does; ``SERVE_TEST_DEFAULT_PROXY=1`` tests the default proxy instead.
    """
    import ray
    from ray import serve

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if os.environ.get("SERVE_TEST_DEFAULT_PROXY") != "1":
        os.environ.update(read_env_file(PROJECT_ROOT / "serve.env"))
        # HAProxy state and listeners of our own, so a server running on this machine doesn't collide.
        os.environ.update(private_ingress_env(Path(tempfile.mkdtemp(prefix="haproxy-tests-"))))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
             _metrics_export_port=free_port(), _system_config={"metrics_report_interval_ms": 1000})
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def metrics_url(serve_url: str) -> str:
    """Prometheus endpoint of this node's Ray metrics agent (Serve's and the app's metrics)."""
    import ray

    (node,) = ray.nodes()
    return f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"


@pytest.fixture(scope="module")
def file_app(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app with the default JSONL file log in a fresh data directory."""
    from ray import serve

    data_dir: Path = tmp_path_factory.mktemp("data")
    env = {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": ""}
    deploy(serve_url, env)
    yield RunningApp(serve_url, data_dir, API_KEY, env)
    serve.delete(APP_NAME)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster this module can stop and start."""
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def pg_app(serve_url: str, pg: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app logging to the throwaway PostgreSQL cluster (quick retry for outage tests)."""
    from ray import serve

    data_dir: Path = tmp_path_factory.mktemp("data")
    env = {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": pg.dsn}
    deploy(serve_url, env, log_writer={"retry_interval_s": 0.5})
    yield RunningApp(serve_url, data_dir, API_KEY, env)
    serve.delete(APP_NAME)
