"""Start and stop the server as ``serve run`` does, for benchmarks of one configuration."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from core.polling import GiveUp, wait_until
from core.ports import free_port
from core.serve_cli import serve_cli
from core.settings import PROJECT_ROOT
from loadtest.server_env import private_ingress_env, read_env_file

SERVE_ENV = PROJECT_ROOT / "serve.env"
CONFIG = PROJECT_ROOT / "serve_config.yaml"


@dataclass(frozen=True)
class ServerConfig:
    """One configuration of our own server: env file on/off and serve_config.yaml overrides."""

    name: str
    fast_ingress: bool = True
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per deployment name, keys replaced in its serve_config.yaml entry (``user_config`` merged)."""
    import_path: str | None = None
    """Another application in serve_config.yaml's place (a yardstick), with its own deployment options."""


def with_overrides(app: dict[str, Any], deployments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An application of serve_config.yaml with per-deployment overrides (``user_config`` merged, other keys
    replaced); the one merge the benchmarks and the tests use."""
    present = {d["name"] for d in app["deployments"]}
    app["deployments"] += [{"name": name} for name in deployments if name not in present]
    for deployment in app["deployments"]:
        for key, value in deployments.get(deployment["name"], {}).items():
            if key == "user_config":
                deployment["user_config"] = {**deployment.get("user_config", {}), **value}
            else:
                deployment[key] = value
    return app


def config_file(config: ServerConfig, port: int, path: Path) -> Path:
    """serve_config.yaml with the port and ``config``'s overrides, written to ``path``."""
    document = yaml.safe_load(CONFIG.read_text())
    document["http_options"]["port"] = port
    if config.import_path is not None:
        document["applications"][0].update(import_path=config.import_path, deployments=[])
    with_overrides(document["applications"][0], config.deployments)
    path.write_text(yaml.safe_dump(document))
    return path


def wait_healthy(url: str, timeout_s: float = 90, alive: Callable[[], bool] = lambda: True) -> None:
    """Until ``url``/health answers 200 (the one health waiter of tests and tools); gives up at once when
    ``alive`` says the server process is gone."""
    def healthy() -> bool:
        if not alive():
            raise GiveUp(f"the server for {url} exited")
        return httpx.get(f"{url}/health", timeout=5).status_code == 200

    wait_until(healthy, timeout_s, f"{url}/health to answer 200")


class ServerProcess:
    """One configuration of the server in its own Ray instance and process group, on a free port.

    By default the README's command, ``python -m serve_app.run`` (its own loopback Ray head; stops
    on SIGTERM or SIGINT); ``launcher=False`` runs bare ``serve run --address local``. Either way
    a new Ray instance, never an attach to one already running here (a test session's, or an operator's).
    """

    def __init__(self, config: ServerConfig, env: dict[str, str] | None = None, log: Path | None = None,
                 launcher: bool = True) -> None:
        self.config = config
        self.port = free_port()
        self.state_dir = Path(tempfile.mkdtemp(prefix="sb-"))
        """The generated config and HAProxy state of this instance; removed by ``stop``."""
        self.url = f"http://127.0.0.1:{self.port}"
        self.dashboard_port, self.metrics_port = free_port(), free_port()
        """Ray's dashboard (``serve deploy``/``serve status``) and metrics agent of the launcher's node."""
        self.env = {**os.environ, **(read_env_file(SERVE_ENV) if config.fast_ingress else {}), **(env or {}),
                    **private_ingress_env(self.state_dir)}   # short path: HAProxy sockets max 97 chars
        if launcher and self.env.get("RAY_AUTH_MODE") == "disabled":   # a test session's own Ray: not the launcher's
            del self.env["RAY_AUTH_MODE"]
        self.log = log
        self.launcher = launcher
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> ServerProcess:
        path = config_file(self.config, self.port, self.state_dir / "serve_config.yaml")
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        command = ([sys.executable, "-m", "serve_app.run", str(path), f"--dashboard-port={self.dashboard_port}",
                    f"--metrics-port={self.metrics_port}"] if self.launcher else
                   [str(Path(sys.executable).with_name("serve")), "run", "--address", "local", str(path)])
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            wait_healthy(self.url, timeout_s, alive=lambda: self.process is not None and self.process.poll() is None)
        except (TimeoutError, GiveUp) as exc:
            self.stop()
            raise RuntimeError(f"server not healthy: {exc} (log: {self.log})") from None
        return self

    def serve_cli(self, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        """``serve <args>`` against this server, as an operator runs it (the README: ``RAY_AUTH_MODE=token``
        from serve.env, the token from Ray's token file; ``--address`` only because the port is not 8265)."""
        env = {name: value for name, value in self.env.items() if name != "RAY_AUTH_TOKEN"}
        return serve_cli(*args, address=f"http://127.0.0.1:{self.dashboard_port}", env=env, timeout_s=timeout_s)

    def deploy(self, config: ServerConfig) -> subprocess.CompletedProcess[str]:
        """``serve deploy`` of serve_config.yaml with ``config``'s overrides (this server's port)."""
        return self.serve_cli("deploy", str(config_file(config, self.port, self.state_dir / f"{config.name}.yaml")))

    def stop(self, timeout_s: float = 90, sig: signal.Signals = signal.SIGINT) -> None:
        """``sig`` (default Ctrl-C: to the process group, as a terminal sends it; SIGTERM: to the main
        process only, as Kubernetes and ``docker stop`` send it), then SIGKILL to the group; state removed."""
        if self.process is not None and self.process.poll() is None:
            self._terminate(timeout_s, sig)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _terminate(self, timeout_s: float, sig: signal.Signals) -> None:
        process = self.process
        assert process is not None
        if sig == signal.SIGINT:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
