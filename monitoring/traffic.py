"""Send synthetic traffic through the live API, or backfill the prediction log directly.

    python -m monitoring.traffic api      --scenario drift --rows 5000 [--host URL]
    python -m monitoring.traffic backfill --scenario drift --rows 20000 --days 14

``api`` posts ``/predict/batch`` requests, so decisions are scored and logged by the real
path (timestamps are now). ``backfill`` scores with the active ONNX model locally and
writes records straight into the configured store (``DATABASE_URL`` or the JSONL file)
with timestamps spread evenly over the last ``--days`` days, for demos and reports.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from core.artifacts import ONNX_FILE, load_card, resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import json_rows
from core.settings import Settings, get_settings
from deployments.decisions import decision_block
from models.onnx_classifier import OnnxBinaryClassifier
from monitoring.scenarios import SCENARIOS, applicants
from prediction_log.records import Block
from prediction_log.stores import open_store

CHUNK = 1000


def send_via_api(frame: pd.DataFrame, host: str, chunk: int = CHUNK, progress: bool = True) -> int:
    """POST the rows in ``/predict/batch`` chunks; returns how many decisions were answered."""
    answered = 0
    rows = json_rows(frame)
    with httpx.Client(base_url=host, timeout=60) as client, \
            tqdm(total=len(rows), unit="row", disable=not progress, desc="api") as bar:
        for start in range(0, len(rows), chunk):
            response = client.post("/predict/batch", json=rows[start:start + chunk])
            response.raise_for_status()
            answered += response.json()["count"]
            bar.update(len(rows[start:start + chunk]))
    return answered


def backfill_records(frame: pd.DataFrame, days: float, model: str | None = None,
                     end: datetime | None = None) -> Block:
    """Score ``frame`` with the model, decide as the server does, and spread the records over ``days`` up to ``end``."""
    model_dir = resolve_model_dir(model)
    card = load_card(model_dir)
    matrix = frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    probabilities = OnnxBinaryClassifier(model_dir / ONNX_FILE).predict_proba(matrix)
    block = decision_block(matrix, probabilities, card["version"], float(card["threshold"]["value"]), 0.0, "backfill")
    end = end or datetime.now(timezone.utc)
    step_us = int(timedelta(days=days) / max(len(frame), 1) / timedelta(microseconds=1))
    start_us = int((end - timedelta(days=days)).timestamp() * 1_000_000)
    ts = pa.array(start_us + step_us * np.arange(1, len(frame) + 1, dtype=np.int64), pa.int64())
    field = block.schema.field("ts")
    return block.set_column(block.schema.get_field_index("ts"), field, ts.cast(field.type))


async def write_records(records: Block, settings: Settings | None = None, progress: bool = True) -> int:
    """Insert into the configured store in chunks; returns rows written."""
    store = await open_store(settings or get_settings())
    written = 0
    try:
        for start in tqdm(range(0, len(records), 5000), disable=not progress, desc="backfill", unit="chunk"):
            written += await store.insert(records.slice(start, 5000))
    finally:
        await store.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["api", "backfill"])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="drift")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-ramp", action="store_true", help="full drift from the first row")
    parser.add_argument("--days", type=float, default=14.0, help="backfill: time span of the records")
    parser.add_argument("--host", default=None, help="api: server URL (default: API_URL setting)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    frame = applicants(SCENARIOS[args.scenario], args.rows, args.seed, ramp=not args.no_ramp)
    if args.mode == "api":
        answered = send_via_api(frame, args.host or get_settings().api_url, progress=not args.no_progress)
        print(f"{answered} decisions answered ({args.scenario})")
    else:
        written = asyncio.run(write_records(backfill_records(frame, args.days), progress=not args.no_progress))
        print(f"{written} records written over {args.days:g} days ({args.scenario})")


if __name__ == "__main__":
    main()
