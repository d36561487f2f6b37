"""``GET /performance``: labelled decisions grouped per period and model version, each beside its model card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator

from core.artifacts import CARD_FILE, MODELS_DIR, load_card
from models.performance import card_expectation, realized
from prediction_log.outcomes import Labelled
from prediction_log.query import LogQuery

Period = Literal["day", "week"]


class PerformanceQuery(BaseModel):
    """Decisions made in ``[since, until)`` (UTC when naive), per ``by`` period, optionally one model version."""

    since: datetime | None = None
    until: datetime | None = None
    by: Period = "day"
    model_version: str | None = Field(None, max_length=64)

    _aware = field_validator("since", "until")(LogQuery._aware.__func__)  # type: ignore[attr-defined]


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


def performance(labelled: Labelled, by: Period, card_of: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """Per model version overall, and per period and version; ``card_of(version)``: its card, or None if unknown."""
    starts = period_starts(labelled.ts, by)

    def group(mask: np.ndarray, version: str) -> dict[str, Any]:
        figures = realized(labelled.probability[mask], labelled.defaulted[mask], labelled.threshold[mask])
        card = card_of(version)
        figures["expected"] = card_expectation(card, figures["labelled"]) if card else None
        return figures

    versions = sorted(set(labelled.model_version.tolist()))
    overall = {v: group(labelled.model_version == v, v) for v in versions}
    periods = []
    for start in np.unique(starts):
        in_period = starts == start
        for v in versions:
            mask = in_period & (labelled.model_version == v)
            if mask.any():
                periods.append({"period_start": str(start), "model_version": v, **group(mask, v)})
    return {"by": by, "labelled": len(labelled), "model_versions": overall, "periods": periods}
