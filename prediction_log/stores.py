"""Open the configured prediction log and the stores beside it, of one kind: PostgreSQL when ``DATABASE_URL`` is set,
else the JSONL files in ``DATA_DIR``. The only module that knows which kinds exist (the log writer and the tools use
the same choice); everything else holds a ``LogStores``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from prediction_log.files.days import split_single_file
from prediction_log.files.groups import FileGroups
from prediction_log.files.model_changes import FileModelChanges
from prediction_log.files.monitoring_runs import FileMonitoringRuns
from prediction_log.files.outcomes import FileOutcomes
from prediction_log.files.store import FileStore
from prediction_log.groups import GroupStore
from prediction_log.model_changes import ModelChangeStore
from prediction_log.monitoring_runs import MonitoringRunStore
from prediction_log.outcomes import OutcomeStore
from prediction_log.postgres.groups import PostgresGroups
from prediction_log.postgres.model_changes import PostgresModelChanges
from prediction_log.postgres.monitoring_runs import PostgresMonitoringRuns
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import PostgresStore
from prediction_log.store import Store

logger = logging.getLogger(__name__)

FILE_LOG_NAME = "predictions"
"""The file log's folder of day files (``files.days``)."""
SINGLE_FILE_LOG_NAME = "predictions.jsonl"
"""The file log as versions before day files wrote it: split into day files when the log writer starts."""
OUTCOMES_FILE_NAME = "outcomes.jsonl"
GROUPS_FILE_NAME = "groups.jsonl"
MODEL_CHANGES_FILE_NAME = "model_changes.jsonl"
MONITORING_RUNS_FILE_NAME = "monitoring_runs.jsonl"


@dataclass(frozen=True)
class LogStores:
    """The log's store and the stores beside it, all of one kind."""

    log: Store
    outcomes: OutcomeStore
    groups: GroupStore
    model_changes: ModelChangeStore
    monitoring_runs: MonitoringRunStore
    unreadable_lines: Callable[[], dict[str, int]]
    """Lines of the stores' files that could not be read, per file (none in PostgreSQL)."""


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


def file_stores(settings: Settings, reads: int = 2) -> LogStores:
    """The file log and the JSONL files beside it in ``DATA_DIR``."""
    log = open_file_log(settings, reads)
    data = settings.data_dir
    outcomes, groups = FileOutcomes(data / OUTCOMES_FILE_NAME, log), FileGroups(data / GROUPS_FILE_NAME, log)
    changes, runs = (
        FileModelChanges(data / MODEL_CHANGES_FILE_NAME),
        FileMonitoringRuns(data / MONITORING_RUNS_FILE_NAME),
    )

    def unreadable() -> dict[str, int]:
        files = [log.unreadable] + [side.file.unreadable for side in (outcomes, groups, changes, runs)]
        return {f.what: f.count for f in files if f.count}

    return LogStores(log, outcomes, groups, changes, runs, unreadable)


def postgres_stores(log: PostgresStore) -> LogStores:
    """The tables beside the log's, in its database (on its pools)."""
    return LogStores(
        log, PostgresOutcomes(log), PostgresGroups(log), PostgresModelChanges(log), PostgresMonitoringRuns(log), dict
    )


async def connect_postgres_stores(dsn: str, **options: Any) -> LogStores:
    """The PostgreSQL stores (``PostgresStore.connect``'s ``options``), with the tables beside the log made now, so
    the counts kept of every decision (``fairness_days``) count from the first one rather than once, all at once,
    at the first group post. A failure there is logged, not raised: the log itself must not wait for it (the first
    group post or fairness read tries again)."""
    log = await PostgresStore.connect(dsn, **options)
    try:
        await PostgresGroups(log).ensure_schema()
    except Exception as exc:
        logger.error("prediction log: the tables beside the log could not be made now (%s: %s); the first group "
                     "post or fairness read tries again", type(exc).__name__, exc)
    return postgres_stores(log)


async def open_stores(settings: Settings) -> LogStores:
    """PostgreSQL when ``DATABASE_URL`` is set (schema created if missing), else the JSONL files (the tools)."""
    if settings.database_url:
        return await connect_postgres_stores(settings.database_url)
    return file_stores(settings)
