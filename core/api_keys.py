"""The keys that guard personal data (the prediction log, outcomes) and, optionally, scoring.

``API_KEY`` holds every scope (the single key most installations need). ``API_KEYS`` adds scoped
keys: entries ``scope[+scope]:secret`` separated by spaces or commas, e.g.
``API_KEYS="read:9f3b... outcomes:c41d... read+outcomes:77aa..."``. Rotation without downtime: add
the new key, move the clients, remove the old key, each step a restart or redeploy with both valid.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from core.private_files import check_private_file, private_dir
from core.settings import Settings

KEY_FILE = "api_key"
Scope = Literal["read", "outcomes", "score", "fairness"]
"""``read``: the log and what is computed from it (/predictions*, /performance, /challenger);
``outcomes``: POST /outcomes; ``score``: /predict* when ``SCORING_REQUIRES_KEY`` is on."""
SCOPES: tuple[Scope, ...] = get_args(Scope)
MIN_SCOPED_KEY_CHARS = 16


@dataclass(frozen=True)
class ApiKey:
    secret: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyRing:
    """Every valid key with its scopes; a check compares against all of them, in constant time each."""

    keys: tuple[ApiKey, ...]

    def allows(self, given: str | None, scope: Scope) -> bool:
        """Whether ``given`` is a key holding ``scope``; a missing or empty key never is. Every key is
        compared (no early exit), so the time does not tell which key nearly matched."""
        if not given:
            return False
        granted = False
        for key in self.keys:
            if secrets.compare_digest(given.encode(), key.secret.encode()) and scope in key.scopes:
                granted = True
        return granted

    def knows(self, given: str | None) -> bool:
        """Whether ``given`` is any valid key (to tell 401 from 403)."""
        return any(self.allows(given, scope) for scope in SCOPES)


def parse_scoped_keys(text: str) -> list[ApiKey]:
    """``scope[+scope]:secret`` entries (spaces or commas between them); a bad entry is an error naming it,
    never a key silently dropped or a short secret accepted."""
    keys = []
    for number, entry in enumerate((e for e in re.split(r"[\s,]+", text.strip()) if e), start=1):
        scopes, sep, secret = entry.partition(":")
        named = set(scopes.split("+"))
        if not sep or not named or not named <= set(SCOPES):   # named by position: the entry may be a bare secret
            raise ValueError(f"API_KEYS entry {number}: write scope[+scope]:secret with scopes from {SCOPES}")
        if len(secret) < MIN_SCOPED_KEY_CHARS:
            raise ValueError(
                f"API_KEYS entry for {scopes}: the secret needs at least {MIN_SCOPED_KEY_CHARS} characters"
            )
        keys.append(ApiKey(secret, frozenset(named)))
    return keys


def key_ring(settings: Settings) -> KeyRing:
    """``API_KEY`` (or the generated one) with every scope, plus the scoped ``API_KEYS``."""
    full = ApiKey(resolve_api_key(settings), frozenset(SCOPES))
    scoped = parse_scoped_keys(settings.api_keys.get_secret_value()) if settings.api_keys else []
    return KeyRing((full, *scoped))


def resolve_api_key(settings: Settings) -> str:
    """``API_KEY`` if set; otherwise a random key created once in ``DATA_DIR/api_key`` (mode 0600).

    The file is written under a temporary name and linked into place, so a replica starting at
    the same moment reads either no file (and creates its own, losing the race harmlessly) or the
    whole key — never an empty one.
    """
    if settings.api_key is not None and settings.api_key.get_secret_value():
        key = settings.api_key.get_secret_value()
        if len(key) < MIN_SCOPED_KEY_CHARS:
            raise ValueError(f"API_KEY needs at least {MIN_SCOPED_KEY_CHARS} characters (it holds every scope)")
        return key
    path: Path = settings.data_dir / KEY_FILE
    private_dir(path.parent)
    if not path.exists():
        temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # fails if another process linked its key first
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    check_private_file(path)  # a key file planted by another user is not adopted
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it or set API_KEY")
    return key
