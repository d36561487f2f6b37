"""Filters for reading the log (``GET /predictions``), validated once for every store."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field, field_validator

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
"""Deep pages cost the store offset + limit rows; page with `until` (keyset) instead."""


EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LogQuery(BaseModel):
    """Newest first; ``since`` inclusive, ``until`` exclusive."""

    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    since: datetime | None = None
    until: datetime | None = None
    decision: Literal["approved", "denied"] | None = None

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Naive timestamps are taken as UTC; anything before 1970 as 1970 (no decision is older, and a
        year-1 bound would overflow the stores' date arithmetic: found by the OpenAPI fuzz test)."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return None if value is None else max(value, EARLIEST)
