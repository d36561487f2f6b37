"""Application builder: binds scorer, log writer and ingress into one Serve application.

``serve run serve_config.yaml`` (import path ``serve_app.app:build_app``) or, in Python,
``serve.run(build_app({}))``. Replicas, batching, model and threshold come from the
``deployments`` section of serve_config.yaml.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from deployments.ingress import Ingress
from deployments.log_writer import LogWriter
from deployments.scorer import Scorer

HEAD_NODE_RESOURCE = "node:__internal_head__"   # Ray gives the head node this resource


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application graph: Ingress → (Scorer, LogWriter).

    ``args`` may hold ``scorer``, ``ingress`` and ``log_writer`` user_config dicts, and
    ``env`` (environment variables for every replica, e.g. ``DATABASE_URL``), used when
    the app is started from Python rather than from serve_config.yaml.
    """
    args = args or {}
    actor_options: dict[str, Any] = {"num_cpus": 0}
    if args.get("env"):
        actor_options["runtime_env"] = {"env_vars": {k: str(v) for k, v in args["env"].items()}}

    def configured(deployment: Any, name: str, **extra: Any) -> Any:
        return deployment.options(user_config=args.get(name, {}), ray_actor_options=actor_options | extra)

    scorer = configured(Scorer, "scorer").bind()
    # The file log and the spool live on one node's disk: the head's (as serve_config.yaml pins it).
    log_writer = configured(LogWriter, "log_writer", resources={HEAD_NODE_RESOURCE: 0.001}).bind()
    return configured(Ingress, "ingress").bind(scorer, log_writer)
