"""Stopping the README's server under load: every decision answered 200 is in the log afterwards, and no
process of the server is left running.

The server is the README's command (``python -m serve_app.run``: its own loopback Ray head, serve.env,
private HAProxy state), stopped with SIGINT to its process group as a terminal's Ctrl-C does, or with
SIGTERM to its main process as Kubernetes, systemd (KillMode=mixed) and ``docker stop`` do.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from loadtest.server_process import ServerConfig, ServerProcess
from serve_app.run import processes_of
from tests.conftest import API_KEY
from tests.support.file_log import log_lines
from tests.support.serving import Load
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow   # starts real processes (Ray, PostgreSQL, a browser, Locust or training)


def logged_ids(data_dir: Path) -> tuple[set[str], set[str]]:
    """request_ids in the file log, and in the spool (replayed at the next start)."""
    spooled = sorted((data_dir / "spool").glob("*.jsonl*"))
    return ({json.loads(line)["request_id"] for line in log_lines(data_dir)},
            {json.loads(line)["request_id"] for p in spooled for line in p.read_text().splitlines() if line})


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for process in psutil.process_iter():
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if marker in line and process.pid != os.getpid():
            found.append(f"{process.pid} {line[:120]}")
    return found


def _listeners(processes: list[psutil.Process]) -> list[tuple[str, int, str]]:
    """Every TCP socket the server's processes listen on: (address, port, process name)."""
    found = []
    for process in processes:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    ip = conn.laddr.ip.removeprefix("::ffff:")
                    found.append((ip, conn.laddr.port, process.name()))
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stop_under_load_loses_no_answered_decision_and_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    short_tmp = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))   # the launcher's Ray temp dir goes here
    env = {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": "", "TMPDIR": str(short_tmp)}
    server = ServerProcess(ServerConfig("graceful-shutdown"), env=env, log=tmp_path / "serve.log").start()
    haproxy_dir = str(server.state_dir)
    load = Load(server.url, connections=8, timeout_s=10).start()
    try:
        load.wait_for(1000, timeout_s=60)
        listeners = _listeners(processes_of(None, [str(short_tmp), haproxy_dir]))
        stopping = time.monotonic()
        server.stop(sig=sig)
        stopped_s = time.monotonic() - stopping
    finally:
        load.stop()
        server.stop()
    left = _processes_mentioning(str(short_tmp)) + _processes_mentioning(haproxy_dir)
    shutil.rmtree(short_tmp, ignore_errors=True)
    answered = {a.body["request_id"] for a in load.answers if a.body is not None}
    in_log, in_spool = logged_ids(data_dir)
    record_figures(f"stop_{sig.name}", {
        "answered_200": len(answered), "http_non_200": sum(a.status not in (0, 200) for a in load.answers),
        "in_log": len(answered & in_log), "in_spool": len(answered & in_spool), "shutdown_s": round(stopped_s, 1)})
    assert len(answered) >= 1000
    assert answered <= in_log | in_spool, f"{len(answered - in_log - in_spool)} answered decisions lost"
    assert server.process is not None and server.process.returncode == 0, server.process.returncode
    assert not left, f"left running after the stop: {left}"
    exposed = [f"{ip}:{port} {name}" for ip, port, name in listeners if not ipaddress.ip_address(ip).is_loopback]
    assert server.port in {port for _, port, _ in listeners} and not exposed, f"beyond loopback: {exposed}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # the load's TIME_WAIT sockets don't count
        probe.bind(("127.0.0.1", server.port))   # nothing listens on the API port any more
        probe.listen()
