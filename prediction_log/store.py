"""What the log writer needs from a store of decisions: one interface, whatever holds the records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from prediction_log.aggregates import Bucket
from prediction_log.histograms import Bins
from prediction_log.labelled_bins import LabelledBins
from prediction_log.query import LogQuery
from prediction_log.records import Block


class Store(Protocol):
    kind: str
    """``file`` or ``postgresql`` (for stats and logs)."""
    spools_on_failure: bool
    """True: a failed write means the store is down (the writer spools and reconnects); False: the store is
    the local disk, the failure goes back to the shipper, which keeps the records and retries."""
    data_errors: tuple[type[BaseException], ...]
    """Errors that refuse rows, not the store: the writer retries row by row and keeps what is refused."""

    async def insert(self, block: Block) -> int:
        """Store a live block (idempotent on request_id); returns how many records were new."""

    async def insert_one(self, block: Block) -> int:
        """Store a one-row block on its own (after ``data_errors``)."""

    async def replay(self, block: Block) -> int:
        """Store spooled records, skipping request_ids already stored."""

    def replay_done(self) -> None:
        """A replay pass is over: drop what it kept to recognise stored ids."""

    def set_write_timeout(self, seconds: float) -> None:
        """How long a write may take before it counts as failed (a file append waits for the disk)."""

    async def query(self, q: LogQuery) -> list[dict[str, Any]]: ...

    async def count(self) -> int: ...

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The record of one decision (an adverse-action notice), or None."""

    async def records_between(self, since: datetime | None, until: datetime | None,
                              columns: Sequence[str] | None = None) -> Block:
        """Every record with ``since <= ts < until``, oldest first; only ``columns`` when given (a report
        that needs four columns of a million records need not hold their explanations)."""

    async def sample_between(self, since: datetime | None, until: datetime | None, rows: int,
                             seed: int = 0) -> tuple[Block, int]:
        """A uniform sample of at most ``rows`` records with ``since <= ts < until`` (oldest first), and how many
        records the window holds: memory bounded by ``rows``, not by the window."""

    async def histograms(self, bins: Bins, since: datetime | None,
                         until: datetime | None) -> dict[str, np.ndarray] | None:
        """Every decision of the window's whole hours counted in each variable's ``bins``, or None where the store
        has not counted them all (PostgreSQL counts as it writes, from the hour after ``bins`` were first asked
        for: ``pg_histograms``; the file log counts the window's records)."""

    async def scored(self, since: datetime | None, until: datetime | None,
                     model_version: str | None = None) -> LabelledBins:
        """Every decision of the window counted per day, model version, probability bin and decision
        (``labelled_bins.scored``): what estimated performance reads."""

    async def summary(self, since: datetime | None, until: datetime | None,
                      bucket: Bucket | None = None) -> dict[str, Any]:
        """``prediction_log.aggregates.summary`` of the window (``bucket`` by default from its length), with
        ``latency_ms_quantiles`` (``histograms.latency_quantiles``)."""

    async def close(self) -> None: ...
