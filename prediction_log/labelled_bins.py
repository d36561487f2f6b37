"""Labelled decisions counted per (day, model version, probability bin, decision, outcome): realized performance
from counts, so ``/performance`` over millions of outcomes reads thousands of rows, not millions.

A bin is ``LABELLED_BINS`` equal parts of [0, 1] (0.001 wide). Each holds how many decisions fell there and the
sum, sum of squares, least and greatest of their probabilities: counts, default rate, mean probability, Brier
score, false negatives/positives and cost are exact; AUC treats two decisions in one bin as a tie (half a
concordant pair) and says how far that can move it (``models.performance.realized_from_bins``); calibration
deciles split at bin edges. PostgreSQL keeps these rows as outcomes arrive (``pg_labelled``); ``of_rows`` makes
the same rows from exact ones (the partial days at a window's edges).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import numpy as np

from prediction_log.records import Block

LABELLED_BINS = 1000
"""Equal-width bins of the probability of default: 0.001 wide."""


@dataclass(frozen=True)
class LabelledBins:
    """One entry per (day, model version, bin, denied, defaulted); ``ts`` is the day (UTC) as datetime64[us].
    ``defaulted`` is -1 in the counts of every decision, labelled or not (``scored_days``)."""

    ts: np.ndarray              # datetime64[us]: the decisions' UTC day
    model_version: np.ndarray   # str objects
    probability_bin: np.ndarray  # int16
    denied: np.ndarray          # bool
    defaulted: np.ndarray       # int8
    count: np.ndarray           # int64
    probability_sum: np.ndarray
    probability_sq_sum: np.ndarray
    probability_min: np.ndarray
    probability_max: np.ndarray

    def __len__(self) -> int:
        return len(self.count)

    @property
    def decisions(self) -> int:
        return int(self.count.sum())

    def subset(self, mask: np.ndarray) -> LabelledBins:
        return LabelledBins(*(getattr(self, f.name)[mask] for f in fields(self)))

    @staticmethod
    def concat(parts: list[LabelledBins]) -> LabelledBins:
        return LabelledBins(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(LabelledBins)))


def bin_of(probability: np.ndarray) -> np.ndarray:
    """0 … LABELLED_BINS - 1 (1.0 falls in the last): the SQL in ``pg_labelled`` says the same."""
    return np.minimum(np.floor(probability * LABELLED_BINS), LABELLED_BINS - 1).astype(np.int16)


def empty() -> LabelledBins:
    return LabelledBins(np.array([], dtype="datetime64[us]"), np.array([], dtype=object), np.array([], np.int16),
                        np.array([], bool), np.array([], np.int8), np.array([], np.int64),
                        *(np.array([], np.float64) for _ in range(4)))


def of_rows(ts: np.ndarray, model_version: np.ndarray, probability: np.ndarray, denied: np.ndarray,
            defaulted: np.ndarray) -> LabelledBins:
    """The bins of exact decisions (``ts`` datetime64, one entry per decision); ``defaulted`` -1 counts decisions
    whose outcome is not asked for (``scored``: every decision, for estimated performance)."""
    if not len(probability):
        return empty()
    days = ts.astype("datetime64[D]")
    versions, version_codes = np.unique(model_version.astype(str), return_inverse=True)
    day_values, day_codes = np.unique(days, return_inverse=True)
    bins = bin_of(probability)
    key = ((((day_codes.astype(np.int64) * len(versions) + version_codes) * LABELLED_BINS + bins) * 2
            + denied.astype(np.int64)) * 3 + defaulted.astype(np.int64) + 1)
    keys, group = np.unique(key, return_inverse=True)
    count = np.bincount(group)
    low = np.full(len(keys), np.inf)
    high = np.full(len(keys), -np.inf)
    np.minimum.at(low, group, probability)
    np.maximum.at(high, group, probability)
    rest, outcome_k = np.divmod(keys, 3)
    defaulted_k = outcome_k - 1
    rest, denied_k = np.divmod(rest, 2)
    rest, bin_k = np.divmod(rest, LABELLED_BINS)
    day_k, version_k = np.divmod(rest, len(versions))
    return LabelledBins(day_values[day_k].astype("datetime64[us]"), versions[version_k].astype(object),
                        bin_k.astype(np.int16), denied_k.astype(bool), defaulted_k.astype(np.int8),
                        count.astype(np.int64), np.bincount(group, probability),
                        np.bincount(group, probability * probability), low, high)


def scored(ts: np.ndarray, model_version: np.ndarray, probability: np.ndarray, denied: np.ndarray) -> LabelledBins:
    """The bins of every decision, labelled or not (``defaulted`` -1): what estimated performance reads."""
    return of_rows(ts, model_version, probability, denied, np.full(len(probability), -1, np.int8))


def window_bins(model_version: str, probability: np.ndarray, denied: np.ndarray) -> LabelledBins:
    """``scored`` of one version's decisions with the window as one day (what a comparison of two models sums)."""
    one_day = np.zeros(len(probability), dtype="datetime64[us]")
    return scored(one_day, np.full(len(probability), model_version, dtype=object), probability, denied)


def scored_block(block: Block) -> LabelledBins:
    """``scored`` of some records (the file log's way: it keeps no counts)."""
    return scored(block.column("ts").to_numpy().astype("datetime64[us]"),
                  np.array(block.column("model_version").to_pylist(), dtype=object),
                  block.column("probability_default").to_numpy(zero_copy_only=False),
                  np.array(block.column("credit_decision").to_pylist(), dtype=object) == "denied")


def whole_days(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The first whole UTC day at or after ``since`` and the day ``until`` falls in (open bounds stay open): the
    days a window reads from day counts; the partial days at its edges are counted from their rows."""
    first = last = None
    if since is not None:
        day = utc_day(since)
        first = day if day == since else day + timedelta(days=1)
    if until is not None:
        last = utc_day(until)
    return first, last


def utc_day(moment: datetime) -> datetime:
    """The start of the UTC day ``moment`` falls in."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
