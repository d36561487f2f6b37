"""Read a time window of the prediction log (PostgreSQL or the JSONL file): a bounded sample as a DataFrame, and
the window's histograms on a baseline's PSI bins."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from core.settings import Settings
from prediction_log.histograms import Bins
from prediction_log.stores import open_stores

SAMPLE_ROWS = 100_000
"""Rows the drift report reads at most: a uniform sample of the window (its memory and time are bounded by
this, not by the log's volume); enough for Wasserstein and PSI at the precision the report prints."""


async def read_window(settings: Settings, since: datetime | None, until: datetime | None,
                      rows: int = SAMPLE_ROWS) -> tuple[pd.DataFrame, int]:
    """A uniform sample of at most ``rows`` decisions with ``since <= ts < until``, oldest first, and how many
    decisions the window holds."""
    store = (await open_stores(settings)).log
    try:
        records, total = await store.sample_between(since, until, rows)
    finally:
        await store.close()
    return records.to_pandas(), total


async def window_histograms(settings: Settings, bins: Bins, since: datetime | None,
                            until: datetime | None) -> dict[str, np.ndarray] | None:
    """Every decision of the window's whole hours counted in ``bins`` (``Store.histograms``), or None where the
    store has not counted them all (PostgreSQL, before the bins were first asked for)."""
    store = (await open_stores(settings)).log
    try:
        return await store.histograms(bins, since, until)
    finally:
        await store.close()
