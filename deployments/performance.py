"""``GET /performance``: labelled decisions grouped per period and model version, each beside its model card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from core.artifacts import CARD_FILE, MODELS_DIR, load_card
from core.decision import is_denied
from models.performance import card_expectation, realized, realized_from_bins
from prediction_log.aggregates import Bucket
from prediction_log.labelled_bins import LabelledBins
from prediction_log.outcomes import Labelled
from prediction_log.query import LogQuery

Period = Literal["day", "week"]


class Window(BaseModel):
    """Decisions made in ``[since, until)`` (UTC when naive)."""

    since: datetime | None = None
    until: datetime | None = None

    _aware = field_validator("since", "until")(LogQuery._aware.__func__)  # type: ignore[attr-defined]  # the validator's function


MAX_MINUTE_SERIES = timedelta(days=7)
"""The longest window a per-minute series covers (10,080 points): past it, ask for hours."""


class SummaryQuery(Window):
    """A window's aggregates (``GET /predictions/summary``); ``bucket`` of its series, by default from its length."""

    bucket: Bucket | None = None

    @model_validator(mode="after")
    def _minutes_bounded(self) -> SummaryQuery:
        """A per-minute series of an open or long window would read every minute row the log has."""
        if self.bucket == "minute" and (self.since is None or (self.until or datetime.now(self.since.tzinfo))
                                        - self.since > MAX_MINUTE_SERIES):
            raise ValueError(f"bucket=minute needs since within {MAX_MINUTE_SERIES.days} days of until "
                             "(or bucket=hour)")
        return self


class PerformanceQuery(Window):
    """Per ``by`` period, optionally one model version."""

    by: Period = "day"
    model_version: str | None = Field(None, max_length=64)


def card_of_version(version: str) -> dict[str, Any] | None:
    """The model card of ``version`` from the models folder; None when this node does not hold it."""
    folder = MODELS_DIR / version
    if Path(version).name != version or not (folder / CARD_FILE).is_file():   # a name, never a path
        return None
    return load_card(folder)


def period_starts(ts: np.ndarray, by: Period) -> np.ndarray:
    """The UTC day, or the Monday of the ISO week, each decision was made in."""
    days = ts.astype("datetime64[D]")
    if by == "week":
        days = days - ((days.astype(np.int64) + 3) % 7)   # 1970-01-01 was a Thursday
    return days


def figures_of(labelled: Labelled | LabelledBins, mask: np.ndarray) -> dict[str, Any]:
    """``realized`` of the masked decisions, from their rows or from their counts."""
    if isinstance(labelled, LabelledBins):
        b = labelled.subset(mask)
        return realized_from_bins(b.probability_bin, b.denied, b.defaulted, b.count, b.probability_sum,
                                  b.probability_sq_sum, b.probability_min, b.probability_max)
    return realized(labelled.probability[mask], labelled.defaulted[mask],
                    is_denied(labelled.probability[mask], labelled.threshold[mask]))


def performance(labelled: Labelled | LabelledBins, by: Period,
                card_of: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """Per model version overall, and per period and version; ``card_of(version)``: its card, or None if unknown."""
    starts = period_starts(labelled.ts, by)

    def group(mask: np.ndarray, version: str) -> dict[str, Any]:
        figures = figures_of(labelled, mask)
        card = card_of(version)
        figures["expected"] = card_expectation(card, figures["labelled"]) if card else None
        return figures

    versions, version_codes = np.unique(labelled.model_version.astype(str), return_inverse=True)
    overall = {str(v): group(version_codes == i, str(v)) for i, v in enumerate(versions)}
    period_values, period_codes = np.unique(starts, return_inverse=True)
    keys = period_codes * max(len(versions), 1) + version_codes    # one integer per (period, version)
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    periods = []
    for rows in np.split(order, bounds) if len(order) else []:
        mask = np.zeros(len(labelled), dtype=bool)
        mask[rows] = True
        key = keys[rows[0]]
        version = str(versions[key % max(len(versions), 1)])
        periods.append({"period_start": str(period_values[key // max(len(versions), 1)]), "model_version": version,
                        **group(mask, version)})
    return {"by": by, "labelled": labelled.decisions, "model_versions": overall, "periods": periods}
