"""``GET /fairness`` and the fairness report: the window's decisions counted per group, with their outcomes
(``prediction_log.fairness_counts``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from deployments.performance import Window
from models.fairness import MIN_DECISIONS, MIN_RATIO, fairness_from_counts
from prediction_log.fairness_counts import COLUMNS, FairnessCounts, of_block
from prediction_log.labelled_bins import utc_day
from prediction_log.stores import LogStores

MAX_FAIRNESS_WINDOW = timedelta(days=92)
"""The longest window ``/fairness`` reads (a quarter: the monitoring period of a fair-lending review)."""


class FairnessQuery(Window):
    """The window, and the alert rule: a group with at least ``min_decisions`` whose adverse-impact ratio is
    below ``min_ratio``."""

    min_ratio: float = Field(MIN_RATIO, gt=0, le=1)
    min_decisions: int = Field(MIN_DECISIONS, ge=1, le=1_000_000_000)   # JSON answers hold 64-bit integers only

    @model_validator(mode="after")
    def _bounded(self) -> FairnessQuery:
        """Without ``since`` the last ``MAX_FAIRNESS_WINDOW``, and never a longer one (a key with scope fairness
        must not make the log writer read the whole log where it keeps no counts: the file log); then widened to
        the whole UTC days it touches."""
        until = self.until = self.until or datetime.now(UTC)
        if self.since is None:
            try:
                self.since = until - MAX_FAIRNESS_WINDOW
            except OverflowError:   # an until in the first 92 days of year 1
                self.since = datetime.min.replace(tzinfo=UTC)
        elif until - self.since > MAX_FAIRNESS_WINDOW:
            raise ValueError(f"since must be within {MAX_FAIRNESS_WINDOW.days} days of until")
        self.since, self.until = whole_days_around(self.since, self.until)
        return self


def whole_days_around(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The UTC days the window touches, whole: fair-lending figures are read from per-day counts, and counting a
    day's edge from its decisions would cost as much as the rest of the window (the answer says which days)."""
    start, end = utc_day(since), utc_day(until)
    try:
        return start, end if end == until else end + timedelta(days=1)
    except OverflowError:   # an until on the last day of year 9999
        return start, until


async def window_counts(stores: LogStores, since: datetime, until: datetime) -> FairnessCounts:
    """The window's decisions counted per group: as the store keeps them (PostgreSQL), or from the window's records
    (the file log)."""
    counted = await stores.groups.counted(since, until)
    return counted if counted is not None else await _of_records(stores, since, until)


async def _of_records(stores: LogStores, since: datetime, until: datetime) -> FairnessCounts:
    block = await stores.log.records_between(since, until, COLUMNS)
    ids = block.column("request_id").to_pylist()
    memberships = await stores.groups.of(ids)
    defaulted = await stores.outcomes.defaulted_of(ids)
    return await asyncio.to_thread(of_block, block, memberships, defaulted)


def fairness_of(counts: FairnessCounts, query: FairnessQuery) -> dict[str, Any]:
    """``models.fairness.fairness_from_counts`` of a window's counts."""
    probability = counts.probability_sum / np.maximum(counts.count, 1)
    return fairness_from_counts(counts.attribute, counts.group, counts.denied, counts.challenger_version,
                                counts.challenger_denied,
                                counts.defaulted, probability, counts.probability_bin,
                                counts.count.astype(np.float64), query.min_ratio, query.min_decisions)
