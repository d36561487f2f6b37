"""The latest drift report written by ``python -m monitoring.drift_report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def latest_report(reports_dir: Path) -> dict[str, Any] | None:
    """``REPORTS_DIR/drift/latest.json``, or None when no report was written yet."""
    path = reports_dir / "drift" / "latest.json"
    return json.loads(path.read_text()) if path.exists() else None


def feature_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per feature: Evidently's statistic and verdict, PSI, means."""
    return pd.DataFrame([{
        "feature": f["feature"], "method": f["method"], "statistic": round(f["statistic"], 4),
        "threshold": f["stat_threshold"], "PSI": round(f["psi"], 4), "reference mean": f["reference_mean"],
        "current mean": f["current_mean"], "drifted": f["drifted"]} for f in report["features"]])
