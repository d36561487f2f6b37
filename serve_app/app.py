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


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application graph: Ingress → (Scorer, LogWriter).

    ``args`` may hold ``scorer``, ``ingress`` and ``log_writer`` user_config dicts, used
    when the app is started from Python rather than serve_config.yaml.
    """
    args = args or {}
    scorer = Scorer.options(user_config=args.get("scorer", {})).bind()
    log_writer = LogWriter.options(user_config=args.get("log_writer", {})).bind()
    return Ingress.options(user_config=args.get("ingress", {})).bind(scorer, log_writer)
