"""The key that guards personal data (the prediction log)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from serve_app.settings import Settings

KEY_FILE = "api_key"


def resolve_api_key(settings: Settings) -> str:
    """``API_KEY`` if set; otherwise a random key created once in ``DATA_DIR/api_key`` (mode 0600)."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    path: Path = settings.data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()
