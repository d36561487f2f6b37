"""Start and stop the server as ``serve run`` does, for benchmarks of one configuration."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadtest.server_env import free_port, private_ingress_env, read_env_file
from core.settings import PROJECT_ROOT

SERVE_ENV = PROJECT_ROOT / "serve.env"
CONFIG = PROJECT_ROOT / "serve_config.yaml"


@dataclass(frozen=True)
class ServerConfig:
    """One configuration of our own server: env file on/off and serve_config.yaml overrides."""

    name: str
    fast_ingress: bool = True
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per deployment name, keys replaced in its serve_config.yaml entry (``user_config`` merged)."""


def config_file(config: ServerConfig, port: int, path: Path) -> Path:
    """serve_config.yaml with the port and ``config``'s overrides, written to ``path``."""
    document = yaml.safe_load(CONFIG.read_text())
    document["http_options"]["port"] = port
    for deployment in document["applications"][0]["deployments"]:
        for key, value in config.deployments.get(deployment["name"], {}).items():
            if key == "user_config":
                deployment["user_config"] = {**deployment.get("user_config", {}), **value}
            else:
                deployment[key] = value
    path.write_text(yaml.safe_dump(document))
    return path


class ServerProcess:
    """``serve run`` of one configuration in its own Ray instance and process group, on a free port.

    ``--address local``: a new Ray instance, never an attach to one already running here
    (a test session's, or an operator's).
    """

    def __init__(self, config: ServerConfig, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.state_dir = Path(tempfile.mkdtemp(prefix="sb-"))
        """The generated config and HAProxy state of this instance; removed by ``stop``."""
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(read_env_file(SERVE_ENV) if config.fast_ingress else {}), **(env or {}),
                    **private_ingress_env(self.state_dir)}   # short path: HAProxy sockets max 97 chars
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> "ServerProcess":
        path = config_file(self.config, self.port, self.state_dir / "serve_config.yaml")
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        serve_cli = Path(sys.executable).with_name("serve")
        self.process = subprocess.Popen([str(serve_cli), "run", "--address", "local", str(path)], cwd=PROJECT_ROOT,
                                        env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve run exited with {self.process.returncode} (log: {self.log})")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not healthy after {timeout_s}s (log: {self.log})")

    def stop(self, timeout_s: float = 90) -> None:
        """Ctrl-C (graceful: buffered decisions flushed), then the whole process group; state removed."""
        if self.process is not None and self.process.poll() is None:
            self._terminate(timeout_s)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _terminate(self, timeout_s: float) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
