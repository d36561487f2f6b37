"""The monitoring the server runs by itself: feature drift of the last day and realized discrimination.

The log writer (beside the store) computes a run every ``monitoring_interval_s``: the PSI of each feature over a
uniform sample of the last ``monitoring_window_hours`` of decisions (at most ``monitoring_sample_rows``: the
cost is the sample's, not the window's) against the model's reference sample, and the realized AUC of the
decisions of the last ``realized_window_days`` that have an outcome, beside the model card's holdout AUC. Each
run is stored (``prediction_log.monitoring_runs``) and set as gauges for the alert rules
(``deploy/prometheus/alerts.yml``: PSI > 0.2, AUC more than 0.03 below the card's).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from core.features import FEATURE_NAMES
from core.reference import reference_applicants
from core.settings import LogWriterConfig
from deployments.performance import figures_of
from models.psi import psi
from prediction_log.labelled_bins import LabelledBins
from prediction_log.outcomes import Labelled
from prediction_log.records import Block


@dataclass(frozen=True)
class MonitoringRun:
    id: str
    at: str                          # ISO 8601, UTC
    since: str                       # the drift window
    window_decisions: int
    sampled: int
    psi: dict[str, float] | None     # per feature; None without decisions in the window
    labelled_since: str
    labelled: int
    realized_auc: float | None       # None without both outcomes among the labelled
    expected_auc: float | None       # the model card's holdout AUC (the most frequent version labelled)
    model_version: str | None


def feature_psi(sample: Block, reference: np.ndarray) -> dict[str, float] | None:
    """PSI of each feature of ``sample`` against the reference's columns (``FEATURE_NAMES`` order)."""
    if not len(sample):
        return None
    return {name: round(psi(reference[:, j], sample.column(name).to_numpy(zero_copy_only=False)), 6)
            for j, name in enumerate(FEATURE_NAMES)}


def realized(labelled: Labelled | LabelledBins, card_of: Callable[[str], dict[str, Any] | None]
             ) -> tuple[Any, Any, Any]:
    """Realized AUC, the card's AUC and the version most of the labelled decisions were made by."""
    if not len(labelled):
        return None, None, None
    weights = labelled.count if isinstance(labelled, LabelledBins) else np.ones(len(labelled))
    versions, codes = np.unique(labelled.model_version.astype(str), return_inverse=True)
    version = str(versions[np.argmax(np.bincount(codes, weights))])
    card = card_of(version)
    figures = figures_of(labelled, np.ones(len(labelled), dtype=bool))
    return figures["auc"], card["holdout"]["auc"] if card else None, version


async def monitoring_run(now: datetime, config: LogWriterConfig,
                         sample_between: Callable[..., Any], labelled_between: Callable[..., Any],
                         card_of: Callable[[str], dict[str, Any] | None]) -> MonitoringRun:
    """One run ending at ``now``; ``sample_between`` and ``labelled_between`` are the store's and the outcome
    store's reads (``Store.sample_between``, ``for_reports``)."""
    since = now - timedelta(hours=config.monitoring_window_hours)
    sample, total = await sample_between(since, now, config.monitoring_sample_rows)
    labelled_since = now - timedelta(days=config.realized_window_days)
    labelled = await labelled_between(labelled_since, now, None)
    realized_auc, expected_auc, version = realized(labelled, card_of)
    reference = reference_applicants().to_numpy(dtype=np.float64)
    return MonitoringRun(uuid.uuid4().hex, now.isoformat(), since.isoformat(), int(total), len(sample),
                         feature_psi(sample, reference), labelled_since.isoformat(),
                         labelled.decisions, realized_auc,
                         expected_auc, version)
