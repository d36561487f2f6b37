"""The dashboard's only way to the server: the HTTP API, with readable errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pandas as pd

PAGE = 1000


class ApiError(Exception):
    """A failed API call, with a message fit to show a user."""


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:200]
    if isinstance(detail, list):
        detail = "; ".join(f"{d.get('field') or d.get('loc')}: {d.get('msg')}" for d in detail)
    return f"API answered {response.status_code}: {detail}"


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.timeout_s = timeout_s

    def __reduce__(self) -> tuple:
        """Cache key for ``st.cache_data``: the same URL and key are the same client."""
        return (ApiClient, (self.base_url, self.headers.get("X-API-Key"), self.timeout_s))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, f"{self.base_url}{path}", headers=self.headers,
                                     timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"API unreachable at {self.base_url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ApiError(_message(response))
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def model_card(self) -> dict[str, Any]:
        """The served model's card (``GET /model``): its schema is what the scoring page asks for."""
        return self._call("GET", "/model")

    def check_read_access(self) -> None:
        """``ApiError`` (401/403) unless this key may read the log."""
        self._call("GET", "/predictions/stats")

    def predict(self, applicant: dict[str, float | int], explain: bool = False) -> dict[str, Any]:
        return self._call("POST", "/predict", json=applicant, params={"explain": "true"} if explain else None)

    def performance(self, since: datetime, by: str) -> dict[str, Any]:
        """Realized performance of decisions with outcomes (``GET /performance``)."""
        return self._call("GET", "/performance", params={"since": since.isoformat(), "by": by})

    def challenger(self, since: datetime) -> dict[str, Any]:
        """The shadow challenger against the champion (``GET /challenger``)."""
        return self._call("GET", "/challenger", params={"since": since.isoformat()})

    def fairness(self, since: datetime) -> dict[str, Any]:
        """Approval rates and adverse-impact ratios per group (``GET /fairness``; the key needs scope fairness)."""
        return self._call("GET", "/fairness", params={"since": since.isoformat()})

    def summary(self, since: datetime, bucket: str) -> dict[str, Any]:
        """The window's true counts, rates, score histogram and series (``GET /predictions/summary``)."""
        return self._call("GET", "/predictions/summary", params={"since": since.isoformat(), "bucket": bucket})

    def decisions(self, max_rows: int, since: datetime | None = None) -> pd.DataFrame:
        """The newest ``max_rows`` logged decisions (since ``since``), paged through ``/predictions``."""
        items: list[dict[str, Any]] = []
        while len(items) < max_rows:
            params: dict[str, Any] = {"limit": min(PAGE, max_rows - len(items)), "offset": len(items)}
            if since is not None:
                params["since"] = since.isoformat()
            page = self._call("GET", "/predictions", params=params)["items"]
            items += page
            if len(page) < params["limit"]:
                break
        frame = pd.DataFrame(items)
        if not frame.empty:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return frame
