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
from models.estimated import estimated_from_bins
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


def estimated_of(scored: LabelledBins, mask: np.ndarray) -> dict[str, Any]:
    """``models.estimated.estimated_from_bins`` of the masked decisions' counts."""
    b = scored.subset(mask)
    return estimated_from_bins(b.probability_bin, b.denied, b.count, b.probability_sum, b.probability_sq_sum)


def _groups(ts: np.ndarray, versions: np.ndarray, by: Period) -> dict[tuple[str, str], np.ndarray]:
    """(period start, model version) → mask of the entries in it."""
    period_values, period_codes = np.unique(period_starts(ts, by), return_inverse=True)
    version_values, version_codes = np.unique(versions.astype(str), return_inverse=True)
    keys = period_codes.astype(np.int64) * max(len(version_values), 1) + version_codes
    return {(str(period_values[k // len(version_values)]), str(version_values[k % len(version_values)])): keys == k
            for k in np.unique(keys).tolist()}


def performance(labelled: Labelled | LabelledBins, by: Period, card_of: Callable[[str], dict[str, Any] | None],
                scored: LabelledBins | None = None) -> dict[str, Any]:
    """Per model version overall, and per period and version: realized figures of the labelled decisions beside
    the card, and, from ``scored`` (every decision's counts), the performance estimated before outcomes."""
    def group(realized_mask: np.ndarray, scored_mask: np.ndarray, version: str) -> dict[str, Any]:
        figures = figures_of(labelled, realized_mask)
        card = card_of(version)
        figures["expected"] = card_expectation(card, figures["labelled"]) if card else None
        if scored is not None:
            figures["estimated"] = estimated_of(scored, scored_mask)
        return figures

    labelled_versions = labelled.model_version.astype(str)
    scored_versions = scored.model_version.astype(str) if scored is not None else np.array([], dtype=str)
    overall = {v: group(labelled_versions == v, scored_versions == v, v)
               for v in sorted({*labelled_versions.tolist(), *scored_versions.tolist()})}
    realized_groups = _groups(labelled.ts, labelled.model_version, by)
    scored_groups = _groups(scored.ts, scored.model_version, by) if scored is not None else {}
    none_labelled, none_scored = np.zeros(len(labelled), dtype=bool), np.zeros(len(scored_versions), dtype=bool)
    periods = [{"period_start": start, "model_version": version,
                **group(realized_groups.get((start, version), none_labelled),
                        scored_groups.get((start, version), none_scored), version)}
               for start, version in sorted({*realized_groups, *scored_groups})]
    return {"by": by, "labelled": labelled.decisions, "model_versions": overall, "periods": periods}
