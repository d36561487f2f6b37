"""Read a time window of the prediction log (PostgreSQL or the JSONL file) as a DataFrame."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.settings import Settings
from prediction_log.stores import open_store


async def read_window(settings: Settings, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Decisions with ``since <= ts < until`` from the configured store, oldest first."""
    store = await open_store(settings)
    try:
        records = await store.records_between(since, until)
    finally:
        await store.close()
    return records.to_pandas()
