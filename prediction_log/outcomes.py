"""Loan outcomes (did the borrower default?) reported months after the decision, keyed by its request_id.

One outcome per decision, ever: re-sending the same outcome changes nothing (a duplicate), a different
one for a decision that has an outcome is a conflict and the whole post is refused (nothing stored),
an outcome for a request_id the log does not hold is reported back, not stored. ``reconcile`` is that
rule, once; the two stores (``postgres.outcomes``: a table; ``files.outcomes``: ``outcomes.jsonl`` beside the
file log) only say which ids the log knows and which outcomes exist.

Labelled decisions (the log joined with outcomes) leave the stores as ``Labelled`` columns, for the
realized-performance figures; for reports over long windows (``for_reports``) PostgreSQL answers with the
counts it keeps as outcomes arrive (``labelled_bins``, ``pg_labelled``) instead of the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from core.decision import is_denied
from prediction_log.labelled_bins import LabelledBins, bin_of, of_rows, window_bins
from prediction_log.records import Block
from prediction_log.shadowed_counts import SCATTER_POINTS, PairCounts, PairedCells, ShadowedCounts

logger = logging.getLogger(__name__)

MAX_OUTCOMES = 10_000
"""Per post: an outcome file of a month's defaults is sent in chunks of this size."""


@dataclass(frozen=True)
class Outcomes:
    """A post of outcomes, as parallel columns."""

    request_ids: list[str]
    defaulted: list[int]
    observed_at: list[datetime]


@dataclass
class Receipt:
    """What a post did: ``conflicting_request_ids`` non-empty means it stored nothing (409)."""

    accepted: int = 0
    unknown_request_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    conflicting_request_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Labelled:
    """Decisions that have an outcome: one entry per decision, the log's columns beside the outcome."""

    ts: np.ndarray             # datetime64[us], UTC
    model_version: np.ndarray  # str objects
    probability: np.ndarray    # float64
    threshold: np.ndarray      # float64
    defaulted: np.ndarray      # int8

    def __len__(self) -> int:
        return len(self.defaulted)

    @property
    def decisions(self) -> int:
        """How many labelled decisions (as ``LabelledBins.decisions``)."""
        return len(self.defaulted)


@dataclass(frozen=True)
class Shadowed:
    """Decisions scored by a shadow challenger too: both models' scores of the same loans, and the outcome
    where one is known (``defaulted`` -1 = not yet)."""

    model_version: np.ndarray          # str objects: the champion that answered
    probability: np.ndarray            # float64
    denied: np.ndarray                 # bool
    challenger_version: np.ndarray     # str objects
    challenger_probability: np.ndarray
    challenger_denied: np.ndarray
    defaulted: np.ndarray              # int8, -1 = no outcome yet

    def __len__(self) -> int:
        return len(self.probability)


def shadowed_of(rows: list[tuple]) -> Shadowed:
    columns: list[Any] = list(zip(*rows)) if rows else [[]] * 7
    return Shadowed(np.array(columns[0], dtype=object), np.array(columns[1], dtype=np.float64),
                    np.array(columns[2], dtype=bool), np.array(columns[3], dtype=object),
                    np.array(columns[4], dtype=np.float64), np.array(columns[5], dtype=bool),
                    np.array([-1 if d is None else d for d in columns[6]], dtype=np.int8))


def reconcile(post: Outcomes, known: Collection[str], existing: Mapping[str, int]) -> tuple[list[int], Receipt]:
    """Which entries of ``post`` to store (indices), and the receipt. ``known``: the posted ids the log holds;
    ``existing``: outcomes already stored for posted ids. A repeated id within the post counts like a re-send."""
    receipt, seen, store = Receipt(), dict(existing), []
    for i, (request_id, defaulted) in enumerate(zip(post.request_ids, post.defaulted)):
        if request_id not in known:
            receipt.unknown_request_ids.append(request_id)
        elif request_id not in seen:
            seen[request_id] = defaulted
            store.append(i)
        elif seen[request_id] == defaulted:
            receipt.duplicates += 1
        elif request_id not in receipt.conflicting_request_ids:
            receipt.conflicting_request_ids.append(request_id)
    if receipt.conflicting_request_ids:
        return [], receipt
    receipt.accepted = len(store)
    return store, receipt


def binned(labelled: Labelled) -> LabelledBins:
    return of_rows(labelled.ts, labelled.model_version, labelled.probability,
                   is_denied(labelled.probability, labelled.threshold), labelled.defaulted)


def no_labelled() -> Labelled:
    return Labelled(np.array([], dtype="datetime64[us]"), np.array([], dtype=object), np.array([], dtype=np.float64),
                    np.array([], dtype=np.float64), np.array([], dtype=np.int8))


def counted(s: Shadowed) -> ShadowedCounts:
    """The shadowed decisions as the counts PostgreSQL keeps of them (``postgres.shadowed``): per version pair the
    confusion, the score correlation, a strided sample of score pairs, the labelled decisions per probability bin
    of each model, the labelled loans per pair of bins, every decision per bin of each model (the window as one
    day: a comparison sums the window)."""
    pairs = []
    for champion, challenger in sorted(set(zip(s.model_version.tolist(), s.challenger_version.tolist()))):
        mask = (s.model_version == champion) & (s.challenger_version == challenger)
        p, q, denied, c_denied = s.probability[mask], s.challenger_probability[mask], s.denied[mask], \
            s.challenger_denied[mask]
        confusion = {(a, b): n for a in (False, True) for b in (False, True)
                     if (n := int(np.sum((denied == a) & (c_denied == b))))}
        correlation = float(np.corrcoef(p, q)[0, 1]) if len(p) > 1 and p.std() > 0 and q.std() > 0 else None
        step = max(1, len(p) // SCATTER_POINTS)
        scatter = list(zip(p[::step][:SCATTER_POINTS].tolist(), q[::step][:SCATTER_POINTS].tolist()))
        known = s.defaulted[mask] >= 0
        day = np.zeros(int(known.sum()), dtype="datetime64[us]")
        versions, defaulted = np.full(len(day), champion, dtype=object), s.defaulted[mask][known]
        champion_bins = of_rows(day, versions, p[known], denied[known], defaulted) if known.any() else None
        challenger_bins = of_rows(day, versions, q[known], c_denied[known], defaulted) if known.any() else None
        paired = PairedCells(bin_of(p[known]), bin_of(q[known]), denied[known], c_denied[known], defaulted,
                             np.ones(len(defaulted), np.int64)).merged() if known.any() else None
        pairs.append(PairCounts(champion, challenger, int(mask.sum()), confusion, correlation, scatter,
                                champion_bins, challenger_bins, paired, window_bins(champion, p, denied),
                                window_bins(champion, q, c_denied)))
    return ShadowedCounts(len(s), pairs)


def shadowed_rows(block: Block, outcomes: Mapping[str, int]) -> Shadowed:
    """The shadowed decisions of a block of records, with their outcomes (file log, in-process backend)."""
    return shadowed_of(shadowed_columns(block, outcomes))


def shadowed_columns(block: Block, outcomes: Mapping[str, int]) -> list[tuple[Any, ...]]:
    """The rows ``shadowed_of`` takes, of the block's shadowed decisions."""
    columns = {name: block.column(name).to_pylist() for name in (
        "request_id", "model_version", "probability_default", "prediction", "challenger_version",
        "challenger_probability", "challenger_decision")}
    return [(columns["model_version"][i], columns["probability_default"][i], columns["prediction"][i] == 1,
             columns["challenger_version"][i], columns["challenger_probability"][i],
             columns["challenger_decision"][i] == "denied", outcomes.get(columns["request_id"][i]))
            for i in range(len(block)) if columns["challenger_probability"][i] is not None]


class OutcomeStore(Protocol):
    """Outcomes beside the log (``postgres.outcomes`` or ``files.outcomes``), by the rule of ``reconcile``."""

    async def record(self, post: Outcomes) -> Receipt: ...

    async def defaulted_of(self, request_ids: list[str]) -> dict[str, int]: ...

    async def labelled(self, since: datetime | None, until: datetime | None, model_version: str | None
                       ) -> Labelled: ...

    async def for_reports(self, since: datetime | None, until: datetime | None, model_version: str | None
                          ) -> LabelledBins:
        """The window's labelled decisions as counts (what every report reads)."""

    async def shadowed_for_reports(self, since: datetime | None, until: datetime | None) -> ShadowedCounts:
        """The window's shadowed decisions as counts (``GET /challenger``)."""

    async def shadowed(self, since: datetime | None, until: datetime | None) -> Shadowed: ...

    async def count(self) -> int: ...
