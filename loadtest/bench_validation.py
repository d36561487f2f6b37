"""Request validation per row: the default model's readers (``single_row``, ``batch_rows``) and, with ``--card``, the
readers built from another model card's schema; best of several repeats, in µs per row.

    uv run python -m loadtest.bench_validation [--card models/<version>/model_card.json] [--out reports/validation.json]

Run the same command in a checkout of another commit (``--label before``) to compare two versions in one run: each
run adds its label's figures to the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from core.reference import sample_applicants

BATCH_ROWS = 1_000
REPEATS = 7


def _best_us_per_row(call: Callable[[], Any], rows: int, loops: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(loops):
            call()
        best = min(best, (time.perf_counter() - started) / (loops * rows))
    return round(best * 1e6, 3)


def measure(single: Callable[[bytes], Any], batch: Callable[[bytes], Any], rows: list[dict[str, Any]]
            ) -> dict[str, float]:
    one, many = orjson.dumps(rows[0]), orjson.dumps(rows[:BATCH_ROWS])
    return {"single_row_us": _best_us_per_row(lambda: single(one), 1, 2_000),
            "batch_us_per_row": _best_us_per_row(lambda: batch(many), BATCH_ROWS, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--card", type=Path, help="a model card whose schema's readers are measured too")
    parser.add_argument("--table", type=Path, help="applicants of that card (CSV), else its reference sample")
    parser.add_argument("--out", type=Path, default=Path("reports/validation.json"))
    args = parser.parse_args()
    from deployments.http.rows import batch_rows, single_row

    figures: dict[str, Any] = {"default_model": measure(single_row, batch_rows, sample_applicants(BATCH_ROWS, 3))}
    if args.card is not None:
        from core.schema import of_card
        from deployments.http.rows import RowReader

        schema = of_card(json.loads(args.card.read_text()))
        source = args.table or args.card.parent / "reference_sample.csv.gz"
        categories = {f.name: str for f in schema.features if f.kind == "category"}
        frame = pd.read_csv(source, dtype=categories)[list(schema.names)]
        records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
        rows = (records * (1 + BATCH_ROWS // len(records)))[:BATCH_ROWS]
        reader = RowReader(schema)
        figures[f"card {args.card.parent.name}"] = measure(reader.single_row, reader.batch_rows, rows)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    report[args.label] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({args.label: figures}, indent=2))


if __name__ == "__main__":
    main()
