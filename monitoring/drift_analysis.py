"""Compare a prediction-log window with the training baseline: Evidently drift, PSI, decisions per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from evidently import Report
from evidently.core.report import Snapshot
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from core.features import FEATURE_NAMES
from core.psi import PSI_ALERT, psi
from models.baseline import Baseline
from prediction_log.histograms import PROBABILITY, counts_psi, drift_bins

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class DriftAnalysis:
    summary: dict[str, Any]
    """JSON-ready result: window, per-feature table, drift share, probability and approval figures."""
    snapshot: Snapshot
    """Evidently's own result (HTML, JSON)."""

    @property
    def drift_share(self) -> float:
        return float(self.summary["drift_share"])

    @property
    def drifted_features(self) -> list[str]:
        return [f["feature"] for f in self.summary["features"] if f["drifted"]]


def _evidently_columns(snapshot_dict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per column: Evidently's method, statistic, threshold and verdict (its own ValueDrift test)."""
    metrics = {m["id"]: m for m in snapshot_dict["metrics"]}
    result = {}
    for test in snapshot_dict["tests"]:
        params = test["metric_config"]["params"]
        if not params.get("type", "").endswith("ValueDrift"):
            continue
        value = metrics[test["metric_config"]["metric_id"]]["value"]
        result[params["column"]] = {"method": params["method"], "statistic": float(value),
                                    "stat_threshold": float(params["threshold"]), "drifted": test["status"] == "FAIL"}
    return result


def _distribution(values: pd.Series) -> dict[str, float]:
    return {"mean": float(values.mean()), **{f"p{int(q * 100):02d}": float(values.quantile(q)) for q in QUANTILES}}


def _daily(window: pd.DataFrame) -> list[dict[str, Any]]:
    days = window.groupby(window["ts"].dt.strftime("%Y-%m-%d"))
    return [{"date": day, "rows": int(len(g)), "approval_rate": float((g["credit_decision"] == "approved").mean()),
             "mean_probability": float(g[PROBABILITY].mean())} for day, g in days]


def analyse(window: pd.DataFrame, baseline: Baseline, since: datetime | None, until: datetime | None,
            max_drift_share: float, counts: dict[str, np.ndarray] | None = None) -> DriftAnalysis:
    """Run Evidently's DataDriftPreset over the ten features (plus the score's own drift) and add PSI: from
    ``counts`` (every decision of the window, on ``drift_bins(baseline.frame)``) when given, else from the sample."""
    bins = drift_bins(baseline.frame)

    def psi_of(name: str) -> float:
        if counts is None:
            return psi(np.asarray(reference[name]), np.asarray(current[name]))
        return counts_psi(bins, baseline.frame, counts, name)

    columns = [*FEATURE_NAMES, PROBABILITY]
    # Compared at the model's input precision (float32): CSV and JSON round-trips must not split ties.
    current = window[columns].astype("float32").astype("float64")
    reference = baseline.frame[columns].astype("float32").astype("float64")
    report = Report([DataDriftPreset(columns=list(FEATURE_NAMES)), ValueDrift(column=PROBABILITY)],
                    include_tests=True)
    snapshot = report.run(current_data=current, reference_data=reference)
    evidently = _evidently_columns(snapshot.dict())
    features = [{"feature": name, **evidently[name], "psi": psi_of(name),
                 "reference_mean": float(reference[name].mean()), "current_mean": float(current[name].mean())}
                for name in FEATURE_NAMES]
    drifted = sum(f["drifted"] for f in features)
    share = drifted / len(features)
    summary = {
        "generated_at": datetime.now(UTC).isoformat(),
        "window": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                   "rows": int(len(window)), "first_ts": window["ts"].min().isoformat(),
                   "last_ts": window["ts"].max().isoformat(),
                   "model_versions": window["model_version"].value_counts().to_dict()},
        "reference": {"model_version": baseline.model_version, "rows": int(len(reference)),
                      "threshold": baseline.threshold},
        "drift_share": share,
        "drifted_count": drifted,
        "max_drift_share": max_drift_share,
        "drift_detected": share > max_drift_share,
        "psi_alert": PSI_ALERT,
        "psi_from": "sample" if counts is None else "histograms",
        "psi_decisions": len(window) if counts is None else int(counts[PROBABILITY].sum()),
        "features": features,
        "probability_default": {
            "reference": _distribution(reference[PROBABILITY]), "current": _distribution(current[PROBABILITY]),
            **evidently[PROBABILITY], "psi": psi_of(PROBABILITY)},
        "approval_rate": {"reference": baseline.approval_rate,
                          "current": float((window["credit_decision"] == "approved").mean())},
        "daily": _daily(window),
    }
    return DriftAnalysis(summary, snapshot)
