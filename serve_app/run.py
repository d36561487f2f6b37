"""The server's entry point: ``serve run`` with the stop and the footprint an operator expects.

    uv run --env-file serve.env python -m serve_app.run [serve_config.yaml]

* **SIGTERM behaves like Ctrl-C.** ``serve run`` shuts down gracefully only on SIGINT (buffered
  decisions are shipped or spooled); Kubernetes, systemd and ``docker stop`` send SIGTERM, which
  kills it mid-flush. This launcher turns either signal into one SIGINT to ``serve run``.
* **Nothing is left behind.** Ray runs as a head node of this launcher's own (a private temp dir,
  a free GCS port) and Ray Serve's HAProxy keeps its config, admin socket and state in a private
  ``0700`` folder; after ``serve run`` exits, every process of that node and any HAProxy reading
  that folder is stopped (Ray 2.60 can leave HAProxy running, holding port 8000), and the folder
  is removed.
* **Loopback only.** The Ray node's IP is 127.0.0.1, so Ray's GCS, raylet, agents and workers
  listen on loopback; HAProxy is started through ``serve_app/haproxy_loopback.sh``, which binds its
  statistics page and Prometheus endpoint to 127.0.0.1 and its admin socket to mode 0600 (Ray's
  template binds both to all interfaces and the socket to 0666). ``http_options.host`` in
  serve_config.yaml decides where the API listens (127.0.0.1 by default).
* **Or a cluster head** (the container, ``--node-ip`` and ``--gcs-port``): Ray listens on that address
  (a name is resolved: in docker-compose.yml the api container's alias on its internal network) so
  workers can join, with token authentication from ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``
  (required: a token of this run alone would lock the workers out); ``--http-host`` sets where the API
  listens without editing serve_config.yaml.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import psutil
import yaml

from core.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HAPROXY_WRAPPER = Path(__file__).with_name("haproxy_loopback.sh")
STOP_TIMEOUT_S = 60
"""How long ``serve run`` gets after the SIGINT (Serve's own shutdown waits at most 30 s per application)."""


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _bundled_haproxy() -> str:
    from ray.serve._private.haproxy import get_haproxy_binary

    return get_haproxy_binary()


def private_state_env(state: Path, env: dict[str, str]) -> dict[str, str]:
    """HAProxy state in ``state`` (unless the operator chose a place), HAProxy through the loopback wrapper."""
    chosen = {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state / "server-state"),
    }
    out = {k: v for k, v in chosen.items() if k not in env}
    if env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1" and "RAY_SERVE_HAPROXY_BINARY_PATH" not in env:
        out["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(HAPROXY_WRAPPER)
        out["CREDIT_HAPROXY_BINARY"] = _bundled_haproxy()
    return out


def ray_token_file() -> Path:
    """Ray's own token file (``~/.ray/auth_token``), created mode 0600 when missing: the server and the
    operator's ``serve deploy``/``serve status`` (same user) read the same token, nobody else can."""
    path = Path.home() / ".ray" / "auth_token"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        return path
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path


def single_node_env(env: dict[str, str]) -> dict[str, str]:
    """A Ray node on loopback with token authentication (unless the operator chose a token: Ray's token file).

    Ray turns 127.0.0.1 into the machine's address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
    (despite its name: the switch to single-machine mode, where the node IP is 127.0.0.1 and Ray's
    servers bind to loopback). The token is Ray's own file, readable by this user alone, so the
    operator's ``serve`` commands authenticate and no other local user can reach the head.
    """
    out = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    if "RAY_AUTH_TOKEN" not in env and "RAY_AUTH_TOKEN_PATH" not in env:
        out["RAY_AUTH_TOKEN_PATH"] = str(ray_token_file())
    return {k: v for k, v in out.items() if k not in env}


def cluster_head_env(env: dict[str, str]) -> dict[str, str]:
    """Token authentication with the operator's token: workers must hold the same one."""
    if "RAY_AUTH_TOKEN" not in env and "RAY_AUTH_TOKEN_PATH" not in env:
        raise SystemExit("serve_app.run --node-ip: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (the workers' token)")
    return {"RAY_AUTH_MODE": "token"}


def with_http_host(config: Path, host: str, out: Path) -> Path:
    """``config`` with ``http_options.host`` replaced (a parsed edit: a missing key is an error, not a no-op)."""
    document = yaml.safe_load(config.read_text())
    if "host" not in document.get("http_options", {}):
        raise SystemExit(f"{config}: no http_options.host to set")
    document["http_options"]["host"] = host
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


DASHBOARD_PORT = 8265
"""Ray's default: ``serve deploy``/``serve status`` find the server without ``--address``."""
METRICS_PORT = 8080
"""A fixed port for Prometheus (Ray's default is a random one, announced in a file of the private temp dir)."""

RUN_MARKER = "CREDIT_SERVER_RUN"
"""Environment variable every process of one server inherits (Ray renames its workers' command lines)."""


def processes_of(run_id: str | None, markers: list[str]) -> list[psutil.Process]:
    """Processes of this run: those that inherited ``RUN_MARKER=run_id`` or whose command line mentions one
    of ``markers`` (the raylet and GCS name our temp dir, HAProxy our folder), and all their descendants.
    Called while the Ray head still runs, so its agents are still the raylet's children."""
    needle = f"{RUN_MARKER}={run_id}".encode() if run_id else None
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            # /proc/<pid>/environ read raw: Ray's setproctitle garbles the start of it for psutil's parser
            environ = Path(f"/proc/{process.pid}/environ").read_bytes()
            command = " ".join(process.cmdline())
            if (needle is not None and needle in environ.split(b"\0")) or any(m in command for m in markers):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    for process in list(found):  # Ray's agents and workers, whose environ setproctitle may have erased
        try:
            found.extend(c for c in process.children(recursive=True) if c not in found)
        except psutil.Error:
            continue
    return found


def stop_leftovers(run_id: str, markers: list[str], timeout_s: float = 10) -> int:
    """SIGTERM, then SIGKILL, every process of this run still alive; returns how many there were."""
    left = processes_of(run_id, markers)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=str(PROJECT_ROOT / "serve_config.yaml"))
    parser.add_argument(
        "--node-ip",
        help="Run a cluster head on this address or host name (default: a single-machine node on 127.0.0.1)",
    )
    parser.add_argument("--gcs-port", type=int, help="The head's GCS port, where workers join (default: a free one)")
    parser.add_argument("--http-host", help="Where the API listens (default: http_options.host of the config)")
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=DASHBOARD_PORT,
        help="Ray's dashboard (the address of `serve deploy` and `serve status`), on the node's "
        f"address (default {DASHBOARD_PORT})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=METRICS_PORT,
        help=f"Prometheus metrics of this node's Ray metrics agent (default {METRICS_PORT})",
    )
    args = parser.parse_args(argv)

    os.umask(0o077)  # everything the server writes (log, spool, outcomes, Ray's logs) is its user's alone
    state = Path(tempfile.mkdtemp(prefix="cr-"))  # mode 0700: the admin socket is ours alone; short (socket paths)
    env = dict(os.environ)
    env.update(private_state_env(state, env))
    node_ip = socket.gethostbyname(args.node_ip) if args.node_ip else "127.0.0.1"
    env.update(cluster_head_env(env) if args.node_ip else single_node_env(env))
    env[RUN_MARKER] = state.name
    temp_dir = state / "r"
    gcs = f"{node_ip}:{args.gcs_port or free_port()}"
    config = (
        with_http_host(Path(args.config), args.http_host, state / "serve_config.yaml")
        if args.http_host
        else Path(args.config)
    )
    markers = [str(state), str(Path(env["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"]).parent) + "/"]
    stopping: dict[str, int | None] = {"signal": None}

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping["signal"] = signum
        print(
            f"serve_app.run: {signal.Signals(signum).name}: stopping the server gracefully", file=sys.stderr, flush=True
        )
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGINT)  # serve run's graceful path, whatever we were sent

    serve: subprocess.Popen | None = None
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        subprocess.run(
            [
                _bin("ray"),
                "start",
                "--head",
                f"--node-ip-address={node_ip}",
                f"--port={gcs.split(':')[1]}",
                "--include-dashboard=true",
                f"--dashboard-host={node_ip}",
                f"--dashboard-port={args.dashboard_port}",
                f"--metrics-export-port={args.metrics_port}",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
                f"--num-cpus={os.cpu_count()}",
            ],
            env=env,
            check=True,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # a terminal's Ctrl-C is ours to pass on
        if stopping["signal"] is None:
            serve = subprocess.Popen(
                [_bin("serve"), "run", "--address", gcs, str(config)],
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            while serve.poll() is None:
                try:
                    serve.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
            code = serve.returncode
        else:
            code = 0
    finally:
        if serve is not None and serve.poll() is None:
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while serve.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGKILL)
        left = stop_leftovers(env[RUN_MARKER], markers)
        if left:
            print(f"serve_app.run: stopped {left} leftover process(es) of this server", file=sys.stderr)
        shutil.rmtree(state, ignore_errors=True)
    return 0 if stopping["signal"] is not None else code


if __name__ == "__main__":
    sys.exit(main())
