"""The prediction log's counters as the benchmarks read them: ``/predictions/stats``, once settled."""

from __future__ import annotations

import time
from typing import Any

import httpx


def log_stats(host: str, api_key: str, timeout_s: float = 60) -> dict[str, Any] | None:
    """``/predictions/stats`` once the store is open; None without a valid key or if it stays unavailable."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(f"{host}/predictions/stats", headers={"X-API-Key": api_key}, timeout=30)
            if response.status_code in (401, 403):
                print(f"log counts unavailable: /predictions/stats answered {response.status_code}")
                return None
            if response.status_code == 200 and response.json().get("records_in_store") is not None:
                return response.json()    # records_in_store is None while the log writer opens its store
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(1.0)


def settled_stats(host: str, api_key: str, timeout_s: float = 30) -> dict[str, Any] | None:
    """The stats once the store's record count stops growing (the last flushes landed)."""
    stats = log_stats(host, api_key)
    deadline = time.monotonic() + timeout_s
    while stats is not None and time.monotonic() < deadline:
        time.sleep(1.0)
        again = log_stats(host, api_key)
        if again is None or again["records_in_store"] == stats["records_in_store"]:
            break
        stats = again
    return stats


def settled_count(host: str, api_key: str, timeout_s: float = 30) -> int | None:
    """Records in the log once settled; None when the log cannot be read."""
    stats = settled_stats(host, api_key, timeout_s)
    return None if stats is None else stats["records_in_store"]
