"""``GET /fairness`` and the fairness report: the window's decisions joined to group membership and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from core.features import AGE_FEATURE
from deployments.performance import Window
from models.fairness import MIN_DECISIONS, MIN_RATIO, fairness
from prediction_log.groups import Memberships
from prediction_log.records import Block

MAX_FAIRNESS_WINDOW = timedelta(days=92)
"""The longest window ``/fairness`` reads (a quarter: the monitoring period of a fair-lending review)."""


class FairnessQuery(Window):
    """The window, and the alert rule: a group with at least ``min_decisions`` whose adverse-impact ratio is
    below ``min_ratio``."""

    min_ratio: float = Field(MIN_RATIO, gt=0, le=1)
    min_decisions: int = Field(MIN_DECISIONS, ge=1, le=1_000_000_000)   # JSON answers hold 64-bit integers only

    @model_validator(mode="after")
    def _bounded(self) -> FairnessQuery:
        """The figures are computed from the window's rows: without ``since`` the last ``MAX_FAIRNESS_WINDOW``, and
        never a longer one (a key with scope fairness must not make the log writer read the whole log)."""
        until = self.until = self.until or datetime.now(UTC)
        if self.since is None:
            try:
                self.since = until - MAX_FAIRNESS_WINDOW
            except OverflowError:   # an until in the first 92 days of year 1
                self.since = datetime.min.replace(tzinfo=UTC)
        elif until - self.since > MAX_FAIRNESS_WINDOW:
            raise ValueError(f"since must be within {MAX_FAIRNESS_WINDOW.days} days of until")
        return self


FAIRNESS_COLUMNS = ("request_id", AGE_FEATURE, "prediction", "probability_default")
"""The log columns ``fairness_of`` reads."""


def fairness_of(block: Block, memberships: Memberships, defaulted: dict[str, int],
                query: FairnessQuery) -> dict[str, Any]:
    """``models.fairness.fairness`` of a window's records (memberships and outcomes keyed by request_id)."""
    ids = block.column("request_id").to_pylist()
    row = {request_id: i for i, request_id in enumerate(ids)}
    by_row = {attribute: {row[i]: g for i, g in groups.items() if i in row}
              for attribute, groups in memberships.items()}
    outcomes = np.array([defaulted.get(i, -1) for i in ids], dtype=np.int8)
    return fairness(block.column(AGE_FEATURE).to_numpy(zero_copy_only=False),
                    block.column("prediction").to_numpy(zero_copy_only=False).astype(bool),
                    block.column("probability_default").to_numpy(zero_copy_only=False), outcomes, by_row,
                    query.min_ratio, query.min_decisions)
