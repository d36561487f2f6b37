"""Edits of ``serve_config.yaml`` that keep what the operator wrote around them (comments, order: ruamel.yaml's
round trip), written under a temporary name and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 120
    return yaml


def user_config(path: Path, deployment: str) -> dict[str, Any]:
    """The ``user_config`` of ``deployment`` in the first application (empty when it has none)."""
    data = _yaml().load(path.read_text())
    for entry in data["applications"][0].get("deployments") or []:
        if entry.get("name") == deployment:
            return dict(entry.get("user_config") or {})
    return {}


def set_user_config(path: Path, deployment: str, values: dict[str, Any]) -> None:
    """Set keys of ``deployment``'s ``user_config`` (the deployment and its user_config added if missing; a value
    None removes its key)."""
    yaml = _yaml()
    data = yaml.load(path.read_text())
    deployments = data["applications"][0].setdefault("deployments", [])
    entry = next((d for d in deployments if d.get("name") == deployment), None)
    if entry is None:
        entry = {"name": deployment}
        deployments.append(entry)
    config = entry.setdefault("user_config", {})
    for key, value in values.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with temporary.open("w") as f:
        yaml.dump(data, f)
    os.replace(temporary, path)
