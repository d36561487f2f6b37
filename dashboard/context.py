"""Settings-derived objects shared by the pages (built once per session)."""

from __future__ import annotations

from core.api_keys import resolve_api_key
from core.settings import Settings
from dashboard.api_client import ApiClient


def settings() -> Settings:
    """Read on every run (cheap), so a changed environment is picked up."""
    return Settings()


def client() -> ApiClient:
    """The API client for ``API_URL`` with the configured (or server-generated) key."""
    current = settings()
    key = current.api_key.get_secret_value() if current.api_key else None
    if key is None and (current.data_dir / "api_key").exists():
        key = resolve_api_key(current)
    return ApiClient(current.api_url, key)
