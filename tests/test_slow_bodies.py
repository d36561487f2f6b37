"""Slow bodies cannot starve admission: the issue's attack on the README's run (``python -m serve_app.run``).

140 keyless connections declare an 8 MiB body to ``/predict/batch``, ask Ray for no request timeout
(``x-request-timeout-seconds: 0``) and trickle one byte every 2 s — from the first byte of the body, or after a
64 KiB head start that fills HAProxy's buffer (``tune.bufsize``), so that HAProxy passes the request on and the
replica reads the rest. Meanwhile 200 valid ``/predict`` requests are sent one after another. Checked against
what the clients saw: at least 99 % answered 200, none waited more than 1 s (before HAProxy buffered bodies, half
were 503: admission had reserved the declared bytes; with a head start, the replica did, until it reserved bytes
as they arrived); every slow connection is closed within its deadline (HAProxy's ``timeout http-request``, or
the replica's ``body_timeout_s``, both 10 s) plus a margin for a loaded VM.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from core.reference import sample_applicants
from loadtest.server_process import ServerConfig, ServerProcess
from tests.conftest import API_KEY
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow

SLOW_CONNECTIONS = 140
VALID_REQUESTS = 200
CLOSE_DEADLINE_S = 10 + 20
"""HAProxy's ``timeout http-request`` (10 s) plus a generous margin for a loaded 2-core CI VM."""


def _trickle(port: int, head_start: int, closed_after: list[float], stop: threading.Event) -> None:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"x-request-timeout-seconds: 0\r\nx-request-disconnect-disabled: ?1\r\n"
                      b"Content-Length: 8388608\r\n\r\n[" + b" " * head_start)
            s.settimeout(2)
            while not stop.is_set():
                try:
                    if s.recv(4096) == b"":   # closed by the server (after its 408)
                        break
                    break                     # an answer: the server gave up on the body
                except TimeoutError:
                    s.sendall(b" ")
    except OSError:
        pass
    closed_after.append(time.monotonic() - started)


@pytest.mark.parametrize("head_start", [0, 64 << 10], ids=["from-the-first-byte", "after-64KiB"])
def test_trickled_bodies_do_not_starve_valid_requests(tmp_path: Path, head_start: int) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "API_KEY": API_KEY, "DATABASE_URL": "",
           "TMPDIR": tempfile.mkdtemp(prefix="sb-", dir="/tmp")}
    server = ServerProcess(ServerConfig("slow-bodies"), env=env, log=tmp_path / "serve.log")
    stop = threading.Event()
    closed_after: list[float] = []
    threads = [threading.Thread(target=_trickle, args=(server.port, head_start, closed_after, stop), daemon=True)
               for _ in range(SLOW_CONNECTIONS)]
    try:
        server.start()
        for t in threads:
            t.start()
        time.sleep(3)   # every slow connection has sent its headers
        body = sample_applicants(1, seed=3)[0]
        statuses: list[int] = []
        waits: list[float] = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(VALID_REQUESTS):
                started = time.monotonic()
                statuses.append(client.post("/predict", json=body).status_code)
                waits.append(time.monotonic() - started)
                time.sleep(0.02)
        for t in threads:
            t.join(CLOSE_DEADLINE_S)
        figures = {"ok": statuses.count(200), "of": len(statuses), "slowest_wait_s": round(max(waits), 3),
                   "slow_connections_closed": len(closed_after),
                   "slowest_close_s": round(max(closed_after, default=0), 1)}
        record_figures(f"slow_bodies_head_start_{head_start}", figures)
        assert statuses.count(200) >= 0.99 * VALID_REQUESTS, figures
        assert max(waits) <= 1.0, figures
        assert len(closed_after) == SLOW_CONNECTIONS and max(closed_after) <= CLOSE_DEADLINE_S, figures
    finally:
        stop.set()
        server.stop()
