"""Ctrl-C of the README's server under load: every decision answered 200 is in the log afterwards.

The server is a real ``serve run`` process (its own Ray instance, serve.env, private HAProxy
state), stopped with SIGINT to its process group as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from loadtest.server_process import ServerConfig, ServerProcess
from tests.conftest import API_KEY
from tests.serving import Load
from tests.test_resilience import record_figures
import pytest

pytestmark = pytest.mark.slow   # starts real processes (Ray, PostgreSQL, a browser, Locust or training)


def logged_ids(data_dir: Path) -> tuple[set[str], set[str]]:
    """request_ids in the file log, and in the spool (replayed at the next start)."""
    def ids(paths: list[Path]) -> set[str]:
        return {json.loads(line)["request_id"] for p in paths for line in p.read_text().splitlines() if line}
    return ids([data_dir / "predictions.jsonl"]), ids(sorted((data_dir / "spool").glob("*.jsonl*")))


def test_ctrl_c_under_load_loses_no_answered_decision(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"DATA_DIR": str(data_dir), "API_KEY": API_KEY, "DATABASE_URL": ""}
    server = ServerProcess(ServerConfig("graceful-shutdown"), env=env, log=tmp_path / "serve.log").start()
    load = Load(server.url, connections=8, timeout_s=10).start()
    try:
        load.wait_for(1000, timeout_s=60)
        stopping = time.monotonic()
        server.stop()
        stopped_s = time.monotonic() - stopping
    finally:
        load.stop()
        server.stop()
    answered = {a.body["request_id"] for a in load.answers if a.body is not None}
    in_log, in_spool = logged_ids(data_dir)
    record_figures("graceful_shutdown", {
        "answered_200": len(answered), "http_non_200": sum(a.status not in (0, 200) for a in load.answers),
        "in_log": len(answered & in_log), "in_spool": len(answered & in_spool), "shutdown_s": round(stopped_s, 1)})
    assert len(answered) >= 1000
    assert answered <= in_log | in_spool, f"{len(answered - in_log - in_spool)} answered decisions lost"
    assert server.process is not None and server.process.returncode is not None
