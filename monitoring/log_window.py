"""Read a time window of the prediction log (PostgreSQL or the JSONL file) as a DataFrame."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from prediction_log.records import COLUMNS
from prediction_log.stores import open_store
from serve_app.settings import Settings


async def read_window(settings: Settings, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """Decisions with ``since <= ts < until`` from the configured store, oldest first."""
    store = await open_store(settings)
    try:
        records = await store.records_between(since, until)
    finally:
        await store.close()
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame
