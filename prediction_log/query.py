"""Filters for reading the log (``GET /predictions``), validated once for every store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
"""Deep pages cost the store offset + limit rows; page with ``cursor`` (keyset) instead."""


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def in_utc_range(value: datetime) -> datetime:
    """A bound in UTC between 1970 and the end of year 9999: a naive time is UTC, anything outside is clamped
    (``9999-12-31T23:59:59-12:00`` is in year 10000 in UTC: the stores' drivers would overflow, a 503)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        return LATEST if value.year > 1970 else EARLIEST
    return min(max(value, EARLIEST), LATEST)


def cursor_of(item: dict) -> str:
    """The keyset position after ``item`` of a page: its timestamp and request_id (a block's records
    share one timestamp, so the timestamp alone would skip the rest of a block)."""
    return f"{item['ts']}|{item['request_id']}"


class LogQuery(BaseModel):
    """Newest first (timestamp, then request_id); ``since`` inclusive, ``until`` exclusive; ``cursor``: the
    ``next_cursor`` of the previous page, so a page continues exactly where that one ended."""

    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    since: datetime | None = None
    until: datetime | None = None
    decision: Literal["approved", "denied"] | None = None
    cursor: str | None = Field(None, max_length=128, pattern=r"^[0-9T:.+\-]{10,40}\|[0-9a-f]{1,64}$",
                               description="next_cursor of the previous page: continue after its last item")

    def after(self) -> tuple[datetime, str] | None:
        """The cursor as (timestamp, request_id): items strictly older than it, in (ts, request_id) order."""
        if self.cursor is None:
            return None
        ts, request_id = self.cursor.rsplit("|", 1)
        return in_utc_range(datetime.fromisoformat(ts)), request_id

    @field_validator("cursor")
    @classmethod
    def _cursor_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parsed = datetime.fromisoformat(value.rsplit("|", 1)[0])
            if parsed.tzinfo is None:
                raise ValueError("cursor timestamp needs a time zone")
        return value

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Naive timestamps are taken as UTC; anything before 1970 as 1970 (no decision is older, and a
        year-1 bound would overflow the stores' date arithmetic: found by the OpenAPI fuzz test)."""
        return None if value is None else in_utc_range(value)
