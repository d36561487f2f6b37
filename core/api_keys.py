"""The key that guards personal data (the prediction log)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.settings import Settings

KEY_FILE = "api_key"


def resolve_api_key(settings: Settings) -> str:
    """``API_KEY`` if set; otherwise a random key created once in ``DATA_DIR/api_key`` (mode 0600).

    The file is written under a temporary name and linked into place, so a replica starting at
    the same moment reads either no file (and creates its own, losing the race harmlessly) or the
    whole key — never an empty one.
    """
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    path: Path = settings.data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)   # fails if another process linked its key first
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it or set API_KEY")
    return key


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing or empty key never matches."""
    return bool(given) and bool(expected) and secrets.compare_digest(given.encode(), expected.encode())
