"""The import path ``serve_config.yaml`` names (``serve_app.app:build_app``); the graph is built in ``deployments``."""

from deployments.app import build_app

__all__ = ["build_app"]
