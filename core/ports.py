"""Free TCP ports on loopback for the processes this project starts (server, Ray nodes, test databases)."""

from __future__ import annotations

import random
import socket

PORT_RANGE = range(7_000, 10_000)
"""Below Ray's worker ports (10002–19999), our Serve port blocks (20000–29999), Serve's replica ports (30000+)
and the kernel's ephemeral range (32768+): an outgoing connection of a starting process cannot take a port
chosen here before its owner binds it, as it can with a port the kernel hands out for ``bind(0)``."""

_handed_out: set[int] = set()


def is_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of PORT_RANGE free right now and not handed out before by this process."""
    candidates = [port for port in PORT_RANGE if port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        if is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")
