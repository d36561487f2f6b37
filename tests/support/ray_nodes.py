"""A two-node Ray cluster on this machine, started as an operator does: ``ray start --head`` and
``ray start --address=…`` (each its own process group, temp dir and ports) with token authentication
(``RAY_AUTH_MODE=token``, one generated token shared by the nodes and the CLI), for the multi-node test."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from core.ports import free_port
from core.settings import PROJECT_ROOT
from loadtest.server_env import private_ingress_env, read_env_file


def node_ports() -> dict[str, int]:
    """Every port a Ray node opens, free ones, so it cannot collide with another instance here."""
    names = ("node-manager-port", "object-manager-port", "metrics-export-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port")
    return {name: free_port() for name in names}


class RayNodes:
    """Head and worker nodes with ``num_cpus`` CPUs each; ``serve.env`` in their environment as in the README."""

    def __init__(self, workers: int = 1, num_cpus: int = 1) -> None:
        self.workers = workers
        self.num_cpus = num_cpus
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rn-"))   # short: Ray's socket paths must fit 107 chars
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.token = secrets.token_hex(32)
        self.env = {**os.environ, **read_env_file(PROJECT_ROOT / "serve.env"),
                    **private_ingress_env(self.temp_dir / "haproxy"),
                    "PYTHONPATH": str(PROJECT_ROOT), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
            self.env.pop(name, None)
        self.processes: list[subprocess.Popen] = []
        self.metrics_ports: list[int] = []

    def ray_command(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).with_name("ray")), *args]

    def start(self, timeout_s: float = 120) -> RayNodes:
        self._spawn("head", "start", "--head", "--block", f"--port={self.gcs_port}", "--node-ip-address=127.0.0.1",
                    f"--num-cpus={self.num_cpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={self.dashboard_port}", f"--ray-client-server-port={free_port()}",
                    f"--temp-dir={self.temp_dir}", "--disable-usage-stats",
                    '--system-config={"metrics_report_interval_ms": 1000}')
        self._wait_nodes(1, timeout_s)
        for index in range(self.workers):
            self._spawn(f"worker-{index}", "start", "--block", f"--address=127.0.0.1:{self.gcs_port}",
                        "--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}", "--disable-usage-stats")
        self._wait_nodes(1 + self.workers, timeout_s)
        return self

    def _spawn(self, name: str, *args: str) -> None:
        ports = node_ports()
        self.metrics_ports.append(ports["metrics-export-port"])
        args += tuple(f"--{flag}={port}" for flag, port in ports.items())
        log = (self.temp_dir / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(self.ray_command(*args), cwd=PROJECT_ROOT, env=self.env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def state(self, resource: str, token: str | None = "", **equal: str) -> httpx.Response:
        """``GET /api/v0/<resource>`` of the head's state API, filtered by ``equal``, with the cluster's token
        (``token=""``), another token, or no ``Authorization`` header at all (``token=None``). Over HTTP, not
        ``ray.util.state``, so the token stays out of this process's Ray settings (its own Ray instance, if
        any, runs without)."""
        params: dict[str, Any] = {"filter_keys": list(equal), "filter_predicates": ["="] * len(equal),
                                  "filter_values": list(equal.values()), "limit": 1000}
        headers = {} if token is None else {"Authorization": f"Bearer {token or self.token}"}
        return httpx.get(f"{self.dashboard_url}/api/v0/{resource}", params=params, timeout=30, headers=headers)

    def _listed(self, resource: str, **equal: str) -> list[dict[str, Any]]:
        response = self.state(resource, **equal)
        response.raise_for_status()
        return response.json()["data"]["result"]["result"]

    def nodes(self) -> list[dict[str, Any]]:
        """Alive nodes, from the head's state API."""
        return self._listed("nodes", state="ALIVE")

    def _wait_nodes(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a ray start exited:\n{self.log_tails()}")
            try:
                if len(self.nodes()) >= count:
                    return
            except Exception:   # dashboard not up yet
                pass
            time.sleep(1)
        raise TimeoutError(f"{count} Ray nodes not alive after {timeout_s}s:\n{self.log_tails()}")

    def log_tails(self, lines: int = 30) -> str:
        """The end of each node's ``ray start`` output, for the failure message (the temp dir is removed)."""
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in sorted(self.temp_dir.glob("*.log")))

    def serve(self, *args: str, timeout_s: float = 300) -> str:
        """A ``serve`` CLI command against this cluster (``--address`` = the head's dashboard)."""
        serve_cli = str(Path(sys.executable).with_name("serve"))
        done = subprocess.run([serve_cli, *args, f"--address={self.dashboard_url}"], cwd=PROJECT_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"serve {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def replica_nodes(self, deployment_class: str) -> list[str]:
        """Node ids of the alive actors of ``deployment_class`` (e.g. ``ServeReplica:credit:Scorer``)."""
        return [actor["node_id"] for actor in self._listed("actors", class_name=deployment_class, state="ALIVE")]

    def metrics_urls(self) -> list[str]:
        """Each node's Prometheus endpoint (its Ray metrics agent)."""
        return [f"http://127.0.0.1:{port}/metrics" for port in self.metrics_ports]

    def stop(self) -> None:
        """SIGTERM each node's process group (as ``ray stop`` does, but only for these nodes), then SIGKILL."""
        for process in reversed(self.processes):
            _signal_group(process, signal.SIGTERM)
        for process in reversed(self.processes):
            with suppress(subprocess.TimeoutExpired):
                process.wait(30)
            _signal_group(process, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(self.temp_dir)], check=False)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayNodes:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@contextmanager
def ray_cluster(workers: int = 1, num_cpus: int = 1, attempts: int = 2) -> Iterator[RayNodes]:
    """A started RayNodes; a start that fails (a node process exits) is retried on fresh ports, its log
    tail kept as a warning so a recurring cause is seen."""
    for attempt in range(1, attempts + 1):
        nodes = RayNodes(workers=workers, num_cpus=num_cpus)
        try:
            nodes.start()
            break
        except RuntimeError as failure:   # its message carries the nodes' log tails
            nodes.stop()
            if attempt == attempts:
                raise
            warnings.warn(f"Ray cluster start {attempt} failed, retrying: {failure}", stacklevel=2)
    try:
        yield nodes
    finally:
        nodes.stop()
