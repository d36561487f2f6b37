"""Send synthetic traffic through the live API, or backfill the prediction log directly.

    python -m monitoring.traffic api      --scenario drift --rows 5000 [--host URL]
    python -m monitoring.traffic backfill --scenario drift --rows 20000 --days 14
    python -m monitoring.traffic api      --scenario concept --rows 20000 --outcomes --outcome-delay 5

``api`` posts ``/predict/batch`` requests, so decisions are scored and logged by the real
path (timestamps are now). ``backfill`` scores with the active ONNX model locally and
writes records straight into the configured store (``DATABASE_URL`` or the JSONL file)
with timestamps spread evenly over the last ``--days`` days, for demos and reports.

``--outcomes`` also reports what happened to each loan, drawn from the generator's known probability of
default under the scenario: ``api`` posts them to ``/outcomes`` (``API_KEY``) after ``--outcome-delay``
seconds, ``backfill`` stores them beside the log. The ``concept`` scenario changes that probability, not
the inputs: the drift report stays quiet, the performance report does not.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

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
from monitoring.scenarios import GROUP_ATTRIBUTE, SCENARIOS, applicants, groups_of, true_defaults
from prediction_log.groups import MAX_GROUPS, GroupPost
from prediction_log.outcomes import MAX_OUTCOMES, Outcomes
from prediction_log.records import Block
from prediction_log.stores import open_stores

CHUNK = 1000


def send_via_api(frame: pd.DataFrame, host: str, chunk: int = CHUNK, progress: bool = True) -> list[str]:
    """POST the rows in ``/predict/batch`` chunks; returns the request_ids of the decisions, in row order."""
    answered: list[str] = []
    rows = json_rows(frame)
    with httpx.Client(base_url=host, timeout=60) as client, \
            tqdm(total=len(rows), unit="row", disable=not progress, desc="api") as bar:
        for start in range(0, len(rows), chunk):
            response = client.post("/predict/batch", json=rows[start:start + chunk])
            response.raise_for_status()
            answered += [item["request_id"] for item in response.json()["results"]]
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
    end = end or datetime.now(UTC)
    step_us = int(timedelta(days=days) / max(len(frame), 1) / timedelta(microseconds=1))
    start_us = int((end - timedelta(days=days)).timestamp() * 1_000_000)
    ts = pa.array(start_us + step_us * np.arange(1, len(frame) + 1, dtype=np.int64), pa.int64())
    field = block.schema.field("ts")
    return block.set_column(block.schema.get_field_index("ts"), field, ts.cast(field.type))


def send_groups(request_ids: list[str], groups: np.ndarray, host: str, api_key: str) -> dict[str, int]:
    """POST each decision's group (``GROUP_ATTRIBUTE``) in chunks; returns the summed receipts."""
    total = {"accepted": 0, "duplicates": 0}
    with httpx.Client(base_url=host, timeout=60, headers={"X-API-Key": api_key}) as client:
        for start in range(0, len(request_ids), MAX_GROUPS):
            body = [{"request_id": i, "attribute": GROUP_ATTRIBUTE, "group": g}
                    for i, g in zip(request_ids[start:start + MAX_GROUPS], groups[start:start + MAX_GROUPS])]
            response = client.post("/groups", json=body)
            response.raise_for_status()
            total = {k: total[k] + response.json()[k] for k in total}
    return total


async def write_groups(records: Block, groups: np.ndarray, settings: Settings | None = None) -> int:
    """Store the group of each backfilled record beside the configured log; returns how many were accepted."""
    settings = settings or get_settings()
    stores = await open_stores(settings)
    try:
        ids, accepted, target = records.column("request_id").to_pylist(), 0, stores.groups
        for start in range(0, len(ids), MAX_GROUPS):
            chunk = ids[start:start + MAX_GROUPS]
            receipt = await target.record(GroupPost(chunk, [GROUP_ATTRIBUTE] * len(chunk),
                                                    [str(g) for g in groups[start:start + len(chunk)]]))
            accepted += receipt.accepted
        return accepted
    finally:
        await stores.log.close()


def send_outcomes(request_ids: list[str], defaulted: np.ndarray, host: str, api_key: str) -> dict[str, int]:
    """POST outcomes in chunks of the API's maximum; returns the summed receipts."""
    totals = {"accepted": 0, "duplicates": 0, "unknown": 0}
    with httpx.Client(base_url=host, timeout=120, headers={"X-API-Key": api_key}) as client:
        for start in range(0, len(request_ids), MAX_OUTCOMES):
            body = [{"request_id": i, "defaulted": int(y)} for i, y in
                    zip(request_ids[start:start + MAX_OUTCOMES], defaulted[start:start + MAX_OUTCOMES])]
            response = client.post("/outcomes", json=body)
            response.raise_for_status()
            receipt = response.json()
            totals["accepted"] += receipt["accepted"]
            totals["duplicates"] += receipt["duplicates"]
            totals["unknown"] += len(receipt["unknown_request_ids"])
    return totals


async def write_outcomes(records: Block, defaulted: np.ndarray, observed_at: datetime,
                         settings: Settings | None = None) -> int:
    """Store outcomes of backfilled records beside the configured log; returns how many were accepted."""
    settings = settings or get_settings()
    stores = await open_stores(settings)
    try:
        outcomes, ids, accepted = stores.outcomes, records.column("request_id").to_pylist(), 0
        for start in range(0, len(ids), MAX_OUTCOMES):
            chunk = ids[start:start + MAX_OUTCOMES]
            receipt = await outcomes.record(Outcomes(chunk, [int(y) for y in defaulted[start:start + len(chunk)]],
                                                     [observed_at] * len(chunk)))
            accepted += receipt.accepted
    finally:
        await stores.log.close()
    return accepted


async def write_records(records: Block, settings: Settings | None = None, progress: bool = True) -> int:
    """Insert into the configured store in chunks; returns rows written."""
    store = (await open_stores(settings or get_settings())).log
    written = 0
    try:
        for start in tqdm(range(0, len(records), 5000), disable=not progress, desc="backfill", unit="chunk"):
            written += await store.insert(records.slice(start, 5000))
    finally:
        await store.close()
    return written


def _every(share: float) -> int:
    if not 0 < share <= 1:
        raise SystemExit("--outcome-share must be in (0, 1]")
    return max(1, round(1 / share))


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
    parser.add_argument("--outcomes", action="store_true", help="also report each loan's outcome (see above)")
    parser.add_argument("--groups", action="store_true",
                        help=f"also post each decision's group ({GROUP_ATTRIBUTE}: A or B) for fairness monitoring")
    parser.add_argument("--outcome-delay", type=float, default=0.0, help="api: seconds before posting outcomes")
    parser.add_argument("--outcome-share", type=float, default=1.0,
                        help="outcomes for this share of the decisions (every n-th), the rest still pending")
    args = parser.parse_args()

    scenario = SCENARIOS[args.scenario]
    frame = applicants(scenario, args.rows, args.seed, ramp=not args.no_ramp)
    settings = get_settings()
    if args.mode == "api":
        host = args.host or settings.api_url
        request_ids = send_via_api(frame, host, progress=not args.no_progress)
        print(f"{len(request_ids)} decisions answered ({args.scenario})")
        if args.outcomes:
            if settings.api_key is None:
                raise SystemExit("--outcomes needs API_KEY (the server's key) in the environment")
            time.sleep(args.outcome_delay)
            defaulted, every = true_defaults(scenario, frame, args.seed, not args.no_ramp), _every(args.outcome_share)
            receipt = send_outcomes(request_ids[::every], defaulted[::every], host,
                                    settings.api_key.get_secret_value())
            print(f"outcomes: {receipt}")
        if args.groups:
            if settings.api_key is None:
                raise SystemExit("--groups needs API_KEY (the server's key) in the environment")
            sent = send_groups(request_ids, groups_of(args.rows, args.seed), host, settings.api_key.get_secret_value())
            print(f"groups: {sent}")
    else:
        records = backfill_records(frame, args.days)
        written = asyncio.run(write_records(records, progress=not args.no_progress))
        print(f"{written} records written over {args.days:g} days ({args.scenario})")
        if args.outcomes:
            defaulted, every = true_defaults(scenario, frame, args.seed, not args.no_ramp), _every(args.outcome_share)
            labelled = records.take(pa.array(np.arange(0, len(records), every)))
            accepted = asyncio.run(write_outcomes(labelled, defaulted[::every], datetime.now(UTC)))
            print(f"{accepted} outcomes stored")
        if args.groups:
            print(f"{asyncio.run(write_groups(records, groups_of(args.rows, args.seed)))} group memberships stored")


if __name__ == "__main__":
    main()
