"""Where the server's own monitoring runs are kept (``deployments.monitoring_run``): a history to chart and audit.

A run is one JSON object with an ``id`` and an ``at``; a few a day. PostgreSQL table ``monitoring_runs``
(``postgres.monitoring_runs``) beside ``predictions``, or ``DATA_DIR/monitoring_runs.jsonl`` beside the file log
(``files.monitoring_runs``).
"""

from __future__ import annotations

from typing import Any, Protocol


class MonitoringRunStore(Protocol):
    async def record(self, run: dict[str, Any]) -> None: ...

    async def newest(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` runs, newest first."""
