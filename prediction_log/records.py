"""Layout of one decision record, shared by every store and tool.

In flight a record is a tuple in ``COLUMNS`` order (cheap to pickle and to COPY); on
disk (file log, spool) it is one JSON object per line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from serve_app.features import FEATURE_NAMES, FEATURES

Record = tuple[Any, ...]

COLUMNS: tuple[str, ...] = (
    "request_id", "ts", "endpoint", "model_version", *FEATURE_NAMES,
    "probability_default", "prediction", "credit_decision", "threshold", "latency_ms", "explanation",
)
OPTIONAL_COLUMNS = frozenset({"explanation"})
"""Columns that may be absent from older log lines (read back as null)."""
SQL_TYPES: dict[str, str] = {
    "request_id": "text NOT NULL",
    "ts": "timestamptz NOT NULL",
    "endpoint": "text NOT NULL",
    "model_version": "text NOT NULL",
    **{f.name: ("integer" if f.dtype == "int" else "double precision") + " NOT NULL" for f in FEATURES},
    "probability_default": "double precision NOT NULL",
    "prediction": "smallint NOT NULL",
    "credit_decision": "text NOT NULL",
    "threshold": "double precision NOT NULL",
    "latency_ms": "real NOT NULL",
    "explanation": "jsonb",
}
"""``explanation`` holds the reason codes of ``?explain=true`` requests, else null."""
_TS = COLUMNS.index("ts")


def to_json_lines(records: list[Record]) -> bytes:
    """JSONL bytes, one object per record, each line ending in a newline (timestamps in ISO 8601)."""
    return b"".join(orjson.dumps(dict(zip(COLUMNS, r)), option=orjson.OPT_APPEND_NEWLINE) for r in records)


def to_json_line(record: Record) -> str:
    """One JSONL line without its newline."""
    return orjson.dumps(dict(zip(COLUMNS, record))).decode()


def from_json_line(line: str | bytes) -> Record:
    """The record tuple back from a JSONL line."""
    row = orjson.loads(line)
    row["ts"] = datetime.fromisoformat(row["ts"])
    return tuple(row.get(c) if c in OPTIONAL_COLUMNS else row[c] for c in COLUMNS)


def as_dict(record: Record) -> dict[str, Any]:
    """JSON-ready mapping for API responses."""
    row = dict(zip(COLUMNS, record))
    row["ts"] = row["ts"].isoformat() if isinstance(row["ts"], datetime) else row["ts"]
    return row


def timestamp(record: Record) -> datetime:
    return record[_TS]
