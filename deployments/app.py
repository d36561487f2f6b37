"""Application builder: binds scorer, log writer and ingress into one Serve application.

``serve run serve_config.yaml`` (import path ``serve_app.app:build_app``) or, in Python,
``serve.run(build_app({}))``. Every deployment option and user_config starts from the typed
defaults in ``core.settings``; ``serve_config.yaml`` overrides them per deployment (Serve applies
the file's values over these). The decorators carry no options.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from core.settings import DEPLOYMENT_DEFAULTS, USER_CONFIGS
from deployments.ingress import Ingress
from deployments.log_writer import LogWriter
from deployments.scorer import Scorer


def deployment_options(name: str, user_config: dict[str, Any] | None = None,
                       env: dict[str, str] | None = None) -> dict[str, Any]:
    """``.options(...)`` for deployment ``name``: the defaults, a validated user_config, replica env."""
    options = DEPLOYMENT_DEFAULTS[name].model_dump()
    options["user_config"] = USER_CONFIGS[name].model_validate(user_config or {}).model_dump()
    if env:
        options["ray_actor_options"] = options["ray_actor_options"] | {
            "runtime_env": {"env_vars": {k: str(v) for k, v in env.items()}}}
    return options


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application graph: Ingress → (Scorer, Challenger, LogWriter), the scorers → LogWriter (their audit
    record of model changes). The Challenger is a second Scorer, idle (no model) until its user_config sets a
    mode and model.

    ``args`` may hold ``scorer``, ``challenger``, ``ingress`` and ``log_writer`` user_config dicts, and ``env``
    (environment variables for every replica, e.g. ``DATABASE_URL``), for starts from Python.
    """
    args = args or {}
    env = args.get("env")
    # @serve.deployment made each class a Deployment (.options, .bind); mypy reads the class (ignores below)
    log_writer = LogWriter.options(  # type: ignore[attr-defined]  # a Deployment
        **deployment_options("LogWriter", args.get("log_writer"), env)).bind()
    scorer = Scorer.options(  # type: ignore[attr-defined]  # a Deployment
        **deployment_options("Scorer", args.get("scorer"), env)).bind(log_writer=log_writer)
    challenger = Scorer.options(  # type: ignore[attr-defined]  # a Deployment
        name="Challenger", **deployment_options("Challenger", args.get("challenger"), env)
    ).bind(challenger=True, log_writer=log_writer)
    return Ingress.options(  # type: ignore[attr-defined]  # a Deployment
        **deployment_options("Ingress", args.get("ingress"), env)).bind(scorer, log_writer, challenger)
