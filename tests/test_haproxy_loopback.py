"""The HAProxy wrapper closes Ray's side doors (stats, metrics, admin socket) and keeps the API's bind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from serve_app.run import HAPROXY_WRAPPER

RAY_TEMPLATE_BINDS = """\
frontend prometheus
    bind :9101
frontend http_frontend
    bind *:8000
listen stats
  bind *:8404
global
    stats socket /tmp/x/admin.sock mode 666 level admin expose-fd listeners
"""


def _wrapped(config: str, tmp_path: Path, **env: str) -> str:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_HAPROXY_")}  # a test Serve's ports
    subprocess.run(["sh", str(HAPROXY_WRAPPER), "-db", "-f", str(path)], check=True,
                   env={**inherited, "CREDIT_HAPROXY_BINARY": "true", **env})
    return path.read_text()


def test_stats_and_metrics_on_loopback_api_where_the_config_says(tmp_path: Path) -> None:
    out = _wrapped(RAY_TEMPLATE_BINDS, tmp_path)
    assert "bind 127.0.0.1:9101" in out and "bind 127.0.0.1:8404" in out
    assert "bind *:8000" in out, "http_options.host 0.0.0.0 (the container) must stay on every interface"
    assert "mode 600 level admin" in out and "666" not in out


def test_ports_chosen_by_ray_settings_are_the_ones_moved(tmp_path: Path) -> None:
    config = RAY_TEMPLATE_BINDS.replace(":9101", ":7101").replace(":8404", ":7404")
    out = _wrapped(config, tmp_path, RAY_SERVE_HAPROXY_STATS_PORT="7404", RAY_SERVE_HAPROXY_METRICS_PORT="7101")
    assert "bind 127.0.0.1:7101" in out and "bind 127.0.0.1:7404" in out and "bind *:8000" in out


def test_a_request_must_arrive_within_the_http_request_timeout(tmp_path: Path) -> None:
    """Ray's template sets no ``timeout http-request`` (slowloris); the wrapper adds one, once, to defaults."""
    config = "defaults\n    mode http\n    timeout client 60s\nbackend b\n    mode http\n"
    out = _wrapped(config, tmp_path)
    assert out.count("timeout http-request 10s") == 1
    assert out.index("timeout http-request") < out.index("backend b")
    assert _wrapped(out, tmp_path).count("timeout http-request") == 1   # already there: left alone


def test_bodies_are_buffered_and_client_timeout_headers_stripped_in_both_configs(tmp_path: Path) -> None:
    """A trickled body is 408 within ``timeout http-request`` at HAProxy, not an admitted request at a replica; the
    client cannot lift Ray's request timeout or cancellation (both headers deleted) — loopback and gateway alike."""
    out = _wrapped(RAY_TEMPLATE_BINDS, tmp_path)
    gateway = (Path(__file__).parents[1] / "deploy" / "gateway.cfg").read_text()
    for config, frontend in ((out, "frontend http_frontend"), (gateway, "frontend api")):
        section = config[config.index(frontend):]
        section = section[:section.find("\nbackend ") if "\nbackend " in section else len(section)]
        for line in ("option http-buffer-request", "http-request del-header x-request-timeout-seconds",
                     "http-request del-header x-request-disconnect-disabled"):
            assert line in section, (frontend, line)
    assert _wrapped(out, tmp_path).count("option http-buffer-request") == 1   # already there: left alone
