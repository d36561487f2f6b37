"""The decision policy, and the response body and log records for a block of scored rows.

Denied when ``probability_default >= threshold``. Column-wise and without per-row Python
objects beyond what the response and the log need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from typing import Any

import numpy as np

from prediction_log.records import Record
from serve_app.features import FEATURES

_INT_COLUMNS = [j for j, f in enumerate(FEATURES) if f.dtype == "int"]


def request_ids(n: int) -> list[str]:
    """``n`` random 128-bit ids as 32 hex characters (the log's unique key)."""
    token = os.urandom(16 * n).hex()
    return [token[i:i + 32] for i in range(0, 32 * n, 32)]


@dataclass(frozen=True)
class Decided:
    responses: list[dict[str, Any]]
    records: list[Record]
    denied: int
    """How many of the block were denied."""


def decide(rows: np.ndarray, probabilities: np.ndarray, version: str, threshold: float,
           latency_ms: float, endpoint: str, explanations: list[dict[str, Any]] | None = None) -> Decided:
    """Apply the threshold to a block; build the response items and the log records in row order.

    ``explanations`` (reason codes, one per row) go into both the responses and the records.
    """
    n = len(rows)
    denied = (probabilities >= threshold).astype(np.int8).tolist()
    labels = ["denied" if d else "approved" for d in denied]
    ids = request_ids(n)
    exact = probabilities.astype(np.float64).tolist()
    rounded = np.round(probabilities, 6).tolist()
    responses = [{"request_id": i, "prediction": d, "probability_default": p, "credit_decision": c,
                  "model_version": version, "threshold": threshold}
                 for i, d, p, c in zip(ids, denied, rounded, labels)]
    columns: list[list[Any]] = rows.T.tolist()
    for j in _INT_COLUMNS:
        columns[j] = [int(v) for v in columns[j]]
    now = datetime.now(timezone.utc)
    records = list(zip(ids, repeat(now), repeat(endpoint), repeat(version), *columns,
                       exact, denied, labels, repeat(threshold), repeat(latency_ms),
                       repeat(None) if explanations is None else explanations))
    if explanations is not None:
        responses = [item | {"explanation": e} for item, e in zip(responses, explanations)]
    return Decided(responses, records, sum(denied))
