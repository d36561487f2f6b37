"""Open the configured prediction-log store (the log writer and the tools use the same choice)."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from prediction_log.file_store import FileStore
from prediction_log.postgres_store import PostgresStore

FILE_LOG_NAME = "predictions.jsonl"
Store = FileStore | PostgresStore


def file_log_path(settings: Settings) -> Path:
    """Where the embedded JSONL log lives (``DATA_DIR/predictions.jsonl``)."""
    return settings.data_dir / FILE_LOG_NAME


async def open_store(settings: Settings) -> Store:
    """PostgreSQL when ``DATABASE_URL`` is set (schema created if missing), else the JSONL file."""
    if settings.database_url:
        return await PostgresStore.connect(settings.database_url)
    return FileStore(file_log_path(settings))
