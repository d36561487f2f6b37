"""The monitoring the server runs by itself: feature drift of the last day and realized discrimination.

The log writer (beside the store) computes a run every ``monitoring_interval_s``: the PSI of each feature over the last
``monitoring_window_hours`` of decisions against the model's reference sample, from the histograms the log keeps of
every decision on the reference's bins (``Store.histograms``: cost in hours, not decisions), or where it has not counted
the whole window yet, over a uniform sample of it (at most ``monitoring_sample_rows``), and the realized AUC of the
decisions of the last ``realized_window_days`` that have an outcome, beside the model card's holdout AUC, and the AUC
estimated before outcomes (``models.estimated``) of the drift window's decisions. Each run is stored
(``prediction_log.monitoring_runs``) and set as gauges for the alert rules (``deploy/prometheus/alerts.yml``: PSI > 0.2,
realized or estimated AUC more than 0.03 below the card's).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from core.artifacts import resolve_model_dir
from core.features import FEATURE_NAMES
from core.psi import psi
from core.settings import LogWriterConfig
from deployments.performance import estimated_of, figures_of
from models.baseline import load_baseline
from prediction_log.histograms import counts_psi, drift_bins
from prediction_log.labelled_bins import LabelledBins
from prediction_log.outcomes import Labelled
from prediction_log.records import Block


@dataclass(frozen=True)
class MonitoringRun:
    id: str
    at: str  # ISO 8601, UTC
    since: str  # the drift window
    window_decisions: int
    sampled: int  # 0: PSI from the histograms of every decision
    psi: dict[str, float] | None  # per feature; None without decisions in the window
    labelled_since: str
    labelled: int
    realized_auc: float | None  # None without both outcomes among the labelled
    expected_auc: float | None  # the model card's holdout AUC (the most frequent version labelled)
    model_version: str | None
    psi_from: str = "sample"  # or "histograms"
    estimated_auc: float | None = None  # CBPE over the drift window's decisions of ``estimated_version``
    estimated_auc_interval: list[float] | None = None  # where the realized AUC should fall if calibrated
    estimated_version: str | None = None  # the version most of the window's decisions were made by
    estimated_expected_auc: float | None = None  # that version's card holdout AUC


_baseline = lru_cache(maxsize=2)(load_baseline)
"""The reference scored once per model folder (the bins need its scores too)."""


def sample_psi(sample: Block, reference: np.ndarray) -> dict[str, float] | None:
    """PSI of each feature of ``sample`` against the reference's columns (``FEATURE_NAMES`` order)."""
    if not len(sample):
        return None
    return {
        name: round(psi(reference[:, j], sample.column(name).to_numpy(zero_copy_only=False)), 6)
        for j, name in enumerate(FEATURE_NAMES)
    }


def most_frequent(versions: np.ndarray, weights: np.ndarray) -> tuple[str, np.ndarray]:
    """The version most decisions were made by (``weights`` decisions an entry), and the mask of its entries."""
    names, codes = np.unique(versions.astype(str), return_inverse=True)
    top = int(np.argmax(np.bincount(codes, weights)))
    return str(names[top]), codes == top


def realized(
    labelled: Labelled | LabelledBins, card_of: Callable[[str], dict[str, Any] | None]
) -> tuple[Any, Any, Any]:
    """Realized AUC, the card's AUC and the version most of the labelled decisions were made by."""
    if not len(labelled):
        return None, None, None
    weights = labelled.count if isinstance(labelled, LabelledBins) else np.ones(len(labelled))
    version, _ = most_frequent(labelled.model_version, weights)
    figures = figures_of(labelled, np.ones(len(labelled), dtype=bool))
    return figures["auc"], card_auc(card_of, version), version


async def monitoring_run(
    now: datetime,
    config: LogWriterConfig,
    sample_between: Callable[..., Any],
    labelled_between: Callable[..., Any],
    card_of: Callable[[str], dict[str, Any] | None],
    histograms: Callable[..., Any] | None = None,
    scored: Callable[..., Any] | None = None,
) -> MonitoringRun:
    """One run ending at ``now``; ``sample_between``, ``histograms`` and ``labelled_between`` are the store's and
    the outcome store's reads (``Store.sample_between``, ``Store.histograms``, ``for_reports``, ``Store.scored``)."""
    since = now - timedelta(hours=config.monitoring_window_hours)
    baseline = _baseline(resolve_model_dir(None))
    bins = drift_bins(baseline.frame)
    counts = await histograms(bins, since, now) if histograms is not None else None
    if counts is not None:
        total, sampled = int(counts[FEATURE_NAMES[0]].sum()), 0
        feature_psi = (
            {name: round(counts_psi(bins, baseline.frame, counts, name), 6) for name in FEATURE_NAMES}
            if total
            else None
        )
    else:
        sample, total = await sample_between(since, now, config.monitoring_sample_rows)
        sampled = len(sample)
        feature_psi = sample_psi(sample, baseline.frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64))
    labelled_since = now - timedelta(days=config.realized_window_days)
    labelled = await labelled_between(labelled_since, now, None)
    realized_auc, expected_auc, version = realized(labelled, card_of)
    estimate, estimated_version = estimated(await scored(since, now) if scored is not None else None)
    return MonitoringRun(
        uuid.uuid4().hex,
        now.isoformat(),
        since.isoformat(),
        int(total),
        sampled,
        feature_psi,
        labelled_since.isoformat(),
        labelled.decisions,
        realized_auc,
        expected_auc,
        version,
        "sample" if counts is None else "histograms",
        estimate["auc"] if estimate else None,
        estimate["auc_interval"] if estimate else None,
        estimated_version,
        card_auc(card_of, estimated_version),
    )


def card_auc(card_of: Callable[[str], dict[str, Any] | None], version: str | None) -> float | None:
    card = card_of(version) if version is not None else None
    return card["holdout"]["auc"] if card else None


def estimated(scored: LabelledBins | None) -> tuple[dict[str, Any] | None, str | None]:
    """CBPE of the window's decisions made by its most frequent version, and that version."""
    if scored is None or not len(scored):
        return None, None
    version, mask = most_frequent(scored.model_version, scored.count)
    return estimated_of(scored, mask), version
