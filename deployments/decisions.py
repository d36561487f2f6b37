"""A block of scored rows → the decision block (the log's records) and the response body.

Column-wise from end to end: the rule (``core.decision``) runs on the probability array, the
records are an Arrow block built from the arrays, and the response is encoded by orjson from
lists made in C (``tolist``), without a Python object per field.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

import numpy as np
import orjson
import pyarrow as pa

from core.decision import APPROVED, DENIED, is_denied
from core.features import FEATURES
from deployments.scored import Scored
from models.reasons import ReasonCoder
from prediction_log.records import SCHEMA, Block

_LABELS = pa.array([APPROVED, DENIED], pa.string())
PROBABILITY_DECIMALS = 6
"""Answers give the default probability rounded to this many decimals (the log keeps it as scored)."""
CHALLENGER_COLUMNS = ("challenger_version", "challenger_probability", "challenger_decision")


def new_request_ids(n: int) -> pa.StringArray:
    """``n`` random 128-bit ids as 32 hex characters (the log's unique key), as one Arrow string array."""
    data = os.urandom(16 * n).hex().encode()
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


Explanations: TypeAlias = list[dict[str, Any] | None] | pa.StringArray
"""Per row of a block: explanations as dicts (``?explain=true``) or as the scorer's JSON texts; None = no reasons."""


def _explanation_column(n: int, explanations: Explanations | None) -> pa.Array:
    if explanations is None:
        return pa.nulls(n, pa.string())
    if isinstance(explanations, pa.Array):
        return explanations
    return pa.array([None if e is None else orjson.dumps(e).decode() for e in explanations], pa.string())


def decision_block(rows: np.ndarray, probabilities: np.ndarray, version: str, threshold: float,
                   latency_ms: float | np.ndarray, endpoint: str, explanations: Explanations | None = None) -> Block:
    """Apply the rule to a block of scored rows; the log records in row order.

    ``latency_ms``: one figure for the block, or one per row (a micro-batch of single-row requests)."""
    n = len(rows)
    denied = is_denied(probabilities, threshold).astype(np.int16)
    columns: list[Any] = [
        new_request_ids(n),
        pa.array(np.full(n, np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")),
                 pa.timestamp("us", tz="UTC")),
        pa.array(np.full(n, endpoint, dtype=object), pa.string()),
        pa.array(np.full(n, version, dtype=object), pa.string()),
        *(pa.array(rows[:, j].astype(np.int32) if f.dtype == "int" else rows[:, j]) for j, f in enumerate(FEATURES)),
        pa.array(probabilities.astype(np.float64)),
        pa.array(denied),
        _LABELS.take(pa.array(denied)),
        pa.array(np.full(n, threshold, dtype=np.float64)),
        pa.array(np.broadcast_to(np.asarray(latency_ms, dtype=np.float32), (n,)).copy()),
        _explanation_column(n, explanations),
        *(pa.nulls(n, SCHEMA.field(name).type) for name in CHALLENGER_COLUMNS),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def with_challenger(block: Block, probabilities: np.ndarray, version: str, threshold: float) -> Block:
    """The block with the shadow challenger's score of each row (its own threshold decides its decision)."""
    n = len(block)
    denied = is_denied(probabilities, threshold).astype(np.int16)
    values = {"challenger_version": pa.array(np.full(n, version, dtype=object), pa.string()),
              "challenger_probability": pa.array(probabilities.astype(np.float64)),
              "challenger_decision": _LABELS.take(pa.array(denied))}
    for name, column in values.items():
        index = SCHEMA.get_field_index(name)
        block = block.set_column(index, SCHEMA.field(name), column)
    return block


def response_items(block: Block, explanations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The documented ``Decision`` objects for a block, in row order (probability rounded to 6 decimals)."""
    ids = block.column("request_id").to_pylist()
    denied = block.column("prediction").to_numpy()
    rounded = answered_probabilities(block).tolist()
    labels = block.column("credit_decision").to_pylist()
    version = block.column("model_version")[0].as_py() if len(block) else ""
    threshold = block.column("threshold")[0].as_py() if len(block) else 0.0
    items = [{"request_id": i, "prediction": d, "probability_default": p, "credit_decision": c,
              "model_version": version, "threshold": threshold}
             for i, d, p, c in zip(ids, denied.tolist(), rounded, labels)]
    if explanations is not None:
        for item, e in zip(items, explanations):
            item["explanation"] = e
    return items


def answered_probabilities(block: Block) -> np.ndarray:
    """The block's default probabilities as every answer gives them."""
    return np.round(block.column("probability_default").to_numpy(), PROBABILITY_DECIMALS)


def denied_count(block: Block) -> int:
    return int(np.count_nonzero(block.column("prediction").to_numpy()))


Recorder = Callable[[Block, str, Any], None]
"""``Backend.record``: queue a block's records (with the shadow challenger's scoring, when one runs)."""


def decide(rows: np.ndarray, scored: Scored, latency_ms: float | np.ndarray, endpoint: str, record: Recorder,
           explanations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The decision step, once for every path (single, micro-batch, batch, explained; the fast tests' backend):
    the rule applied to the scores, the records queued, the response items returned in row order."""
    return response_items(decided_block(rows, scored, latency_ms, endpoint, record, explanations), explanations)


def decided_block(rows: np.ndarray, scored: Scored, latency_ms: float | np.ndarray, endpoint: str, record: Recorder,
                  explanations: list[dict[str, Any]] | None = None) -> Block:
    """The rule applied to the scores and the records queued; the decision block returned (for answers built from
    its columns: ``decide``'s items, the Open Inference Protocol's tensors).

    ``explanations`` (``?explain=true``) are logged for every row; otherwise the scorer's reasons for its denials
    (``Scored.reasons``) are, so every denial has its principal reasons on record."""
    logged = explanations if explanations is not None else scored.reasons
    block = decision_block(rows, scored.probabilities, scored.model_version, scored.threshold, latency_ms, endpoint,
                           logged)
    record(block, endpoint, scored.shadow)
    return block


def denial_reasons(coder: ReasonCoder, rows: np.ndarray, probabilities: np.ndarray,
                   threshold: float) -> pa.StringArray:
    """Per row: the JSON text of a denied row's explanation (TreeSHAP over the denied rows only), null for an
    approved one. Text, made where it is computed: an Arrow string column crosses to the ingress as two buffers
    and goes into the log as it is, where a list of dicts was pickled, unpickled and encoded again per row."""
    denied = np.flatnonzero(is_denied(probabilities, threshold))
    out: list[str | None] = [None] * len(rows)
    for i, explanation in zip(denied.tolist(), coder.explain_dicts(rows[denied]) if len(denied) else []):
        out[i] = orjson.dumps(explanation).decode()
    return pa.array(out, pa.string())
