"""The audit record of model changes: every model a scorer replica started with, switched to, or refused.

A lender must be able to say which model and threshold decided on any day and who changed it. Each
scorer replica appends one entry per event (``started``, ``applied``, ``refused``): from which version and
threshold to which, when, on which host, as which OS user, and the operator's ``change_note`` from the
user_config. Entries carry an id, so a delivery retried after a failure is stored once. PostgreSQL table
``model_changes`` beside ``predictions``, or ``DATA_DIR/model_changes.jsonl`` beside the file log.
"""

from __future__ import annotations

import getpass
import math
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Event = Literal["started", "applied", "refused"]
MAX_LISTED = 1_000
"""Entries one read returns (newest first)."""


@dataclass(frozen=True)
class ModelChange:
    """One entry; ``from_*`` is what answered before (None at a replica's start), ``to_*`` what answers after
    (for ``refused``: what was asked for, while ``from_*`` kept answering)."""

    id: str
    at: str                     # ISO 8601, UTC
    event: Event
    deployment: str             # Scorer or Challenger
    replica: str
    host: str
    os_user: str
    from_version: str | None
    from_threshold: float | None
    to_version: str | None
    to_threshold: float | None
    reason: str | None          # why it was refused
    note: str | None            # the user_config's change_note


def _text(value: Any, limit: int) -> str | None:
    """Bounded text either store takes: NUL (PostgreSQL text refuses it) and lone surrogates (not UTF-8) replaced."""
    if value is None:
        return None
    text = str(value)[:limit].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _number(value: Any) -> float | None:
    """A threshold as stored: a refused change may have asked for "abc" or NaN (its reason says so)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def model_change(event: Event, deployment: str, replica: str, before: tuple[Any, Any] | None,
                 after: tuple[Any, Any] | None, reason: str | None = None, note: Any = None) -> ModelChange:
    """An entry made now, in this process: its host and OS user are those of the replica that applied it (the
    control plane takes a change only from a holder of the server user's token, on loopback). What a refused
    change asked for is untrusted: kept as bounded text and finite numbers, so the entry always stores."""
    (from_version, from_threshold), (to_version, to_threshold) = before or (None, None), after or (None, None)
    return ModelChange(uuid.uuid4().hex, datetime.now(UTC).isoformat(), event, deployment, replica,
                       socket.gethostname(), getpass.getuser(), _text(from_version, 200), _number(from_threshold),
                       _text(to_version, 200), _number(to_threshold), _text(reason, 2_000), _text(note, 500))




class ModelChangeStore(Protocol):
    """The audit record beside the log (``postgres.model_changes`` or ``files.model_changes``)."""

    async def record(self, changes: list[ModelChange]) -> None:
        """Store each entry once by id."""

    async def newest(self, limit: int) -> list[dict[str, Any]]: ...
