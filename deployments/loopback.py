"""Single-machine hardening, called by every deployment's constructor (before Serve starts the replica's servers).

Ray 2.60 starts one inter-deployment gRPC server in every Serve replica on ``[::]:0`` (all
interfaces, hard-coded in ``ray/serve/_private/replica.py``), even when the node's IP is 127.0.0.1.
In single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, set by ``serve_app.run``) this hook
makes that server bind to 127.0.0.1, where the other replicas of the node reach it. On a cluster
the variable is unset and nothing changes (replicas on other nodes must reach it).
"""

from __future__ import annotations

import os
from typing import Any


def bind_replica_servers_to_loopback() -> None:
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        return
    from ray.serve._private import replica

    original = replica.add_port_to_grpc_server
    if getattr(original, "loopback", False):
        return

    def loopback(server: Any, address: str) -> int:
        return original(server, address.replace("[::]:", "127.0.0.1:", 1))

    loopback.loopback = True  # type: ignore[attr-defined]  # our mark on Ray's function: patched once
    replica.add_port_to_grpc_server = loopback
