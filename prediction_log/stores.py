"""Open the configured prediction-log store (the log writer and the tools use the same choice)."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from prediction_log.files.days import split_single_file
from prediction_log.files.store import FileStore
from prediction_log.groups import FileGroups, GroupStore, PostgresGroups
from prediction_log.model_changes import FileModelChanges, ModelChangeStore, PostgresModelChanges
from prediction_log.monitoring_runs import FILE_NAME as MONITORING_RUNS_FILE_NAME
from prediction_log.monitoring_runs import FileMonitoringRuns, MonitoringRunStore, PostgresMonitoringRuns
from prediction_log.outcomes import FileOutcomes, OutcomeStore, PostgresOutcomes
from prediction_log.postgres.store import PostgresStore
from prediction_log.store import Store

FILE_LOG_NAME = "predictions"
"""The file log's folder of day files (``file_days``)."""
SINGLE_FILE_LOG_NAME = "predictions.jsonl"
"""The file log as versions before day files wrote it: split into day files when the log writer starts."""
OUTCOMES_FILE_NAME = "outcomes.jsonl"
GROUPS_FILE_NAME = "groups.jsonl"
MODEL_CHANGES_FILE_NAME = "model_changes.jsonl"


def file_log_dir(settings: Settings) -> Path:
    """Where the embedded JSONL log lives (``DATA_DIR/predictions/YYYY-MM-DD.jsonl``)."""
    return settings.data_dir / FILE_LOG_NAME


def open_file_log(settings: Settings, reads: int = 2) -> FileStore:
    """The file log for its one writer (the log writer): a log written as a single file by an earlier
    version is split into day files first (once)."""
    single = settings.data_dir / SINGLE_FILE_LOG_NAME
    if single.exists():
        split_single_file(single, file_log_dir(settings))
    return FileStore(file_log_dir(settings), reads)


async def open_store(settings: Settings) -> Store:
    """PostgreSQL when ``DATABASE_URL`` is set (schema created if missing), else the JSONL file."""
    if settings.database_url:
        return await PostgresStore.connect(settings.database_url)
    return FileStore(file_log_dir(settings))


def groups_beside(store: Store, settings: Settings) -> GroupStore:
    """Group membership lives beside the log: its database's ``group_membership`` table, or ``groups.jsonl``."""
    if isinstance(store, PostgresStore):
        return PostgresGroups(store)
    return FileGroups(settings.data_dir / GROUPS_FILE_NAME, store)


def outcomes_beside(store: Store, settings: Settings) -> OutcomeStore:
    """Outcomes live beside the log: the ``outcomes`` table of its database, or ``DATA_DIR/outcomes.jsonl``."""
    if isinstance(store, PostgresStore):
        return PostgresOutcomes(store)
    return FileOutcomes(settings.data_dir / OUTCOMES_FILE_NAME, store)


def model_changes_beside(store: Store, settings: Settings) -> ModelChangeStore:
    """The model-change audit lives beside the log: its database's ``model_changes`` table, or
    ``DATA_DIR/model_changes.jsonl``."""
    if isinstance(store, PostgresStore):
        return PostgresModelChanges(store)
    return FileModelChanges(settings.data_dir / MODEL_CHANGES_FILE_NAME)


def monitoring_runs_beside(store: Store, settings: Settings) -> MonitoringRunStore:
    """The server's monitoring runs live beside the log: the ``monitoring_runs`` table, or
    ``DATA_DIR/monitoring_runs.jsonl``."""
    if isinstance(store, PostgresStore):
        return PostgresMonitoringRuns(store)
    return FileMonitoringRuns(settings.data_dir / MONITORING_RUNS_FILE_NAME)
