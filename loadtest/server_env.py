"""Helpers for tools that start the server: env files (as ``uv run --env-file`` reads them), free ports."""

from __future__ import annotations

import random
from pathlib import Path

from core.ports import free_port, is_free


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file, comments and blank lines skipped."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


GRPC_OFFSET = 5_000


def _free_port_block(width: int = 100) -> int:
    """Start of a block of ``width`` HTTP ports in 20000–24999 (gRPC: the same + 5000), below Serve's
    default 30000 and the kernel's ephemeral range, whose first ports are free; random among 50 blocks."""
    starts = [20_000 + width * i for i in range(50)]
    random.shuffle(starts)
    for start in starts:
        if all(is_free(port) for port in range(start, start + 10)) and is_free(start + GRPC_OFFSET):
            return start
    raise RuntimeError("no free block of ports for a second Serve instance")


def private_ingress_env(state_dir: Path) -> dict[str, str]:
    """HAProxy / direct-ingress settings for a second Serve instance on this machine.

    Ray's HAProxy ingress keeps its config, admin socket and server state under
    ``/tmp/haproxy-serve``, listens for stats/metrics and falls back to a proxy on fixed
    ports, and direct-ingress
    replicas take ports from 30000 (HTTP) / 40000 (gRPC) upwards. Two instances sharing
    these route each other's traffic; this gives the new one its own state dir, free
    listener ports and a separate replica port range.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    base = _free_port_block()
    return {
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(base),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(base + 100),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(base + GRPC_OFFSET),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(base + GRPC_OFFSET + 100),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state_dir / "server-state"),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
    }
