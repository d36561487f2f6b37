"""The file log at a million decisions: what each read and the spool replay cost the LogWriter (time, peak RSS).

    uv run python -m loadtest.bench_file_log [--decisions 1000000] [--outcomes 200000] [--spooled 50000]

Fills a fresh ``DATA_DIR`` through the log's own stores: ``--decisions`` control decisions over 30 days in the day files
of ``DATA_DIR/predictions/``, outcomes for ``--outcomes`` of them, and a spool of ``--spooled`` records half of which
are already in the log. Then starts the README's server on it (no database) and, sampling the LogWriter replica's RSS
every 0.1 s, times: the replay at start (until the spool is empty), ``POST /outcomes`` of 10,000 outcomes, ``GET
/performance``, ``/challenger``, ``/predictions/summary`` and ``/fairness`` over the whole window, then the summary of
the last 24 hours and ``/performance`` of the last 7 days (a window reads its days' files only). Writes JSON to
``--out`` (``reports/file_log_scale.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa

from core.polling import wait_until
from core.settings import PROJECT_ROOT
from loadtest.server_process import ServerConfig, ServerProcess
from prediction_log.files.days import day_files
from prediction_log.files.jsonl import from_json_lines
from prediction_log.files.lines import complete_lines
from prediction_log.spool import Spool
from prediction_log.stores import FILE_LOG_NAME

API_KEY = "bench-" + os.urandom(8).hex()
DAYS = 30


def fill(data_dir: Path, decisions: int, outcomes: int, spooled: int) -> dict[str, Any]:
    """The README's backfill command (decisions and outcomes through the file log's own stores), then a spool:
    half records already in the log (the replay must skip them), half new ones."""
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.traffic",
            "backfill",
            "--scenario",
            "control",
            "--no-ramp",
            "--rows",
            str(decisions),
            "--days",
            str(DAYS),
            "--outcomes",
            "--outcome-share",
            str(outcomes / decisions),
            "--no-progress",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": "", "DATA_DIR": str(data_dir)},
    )
    days = [path for _, path in day_files(data_dir / FILE_LOG_NAME)]
    lines = list(itertools.islice((line for path in days for line in complete_lines(path)), spooled))
    known = from_json_lines(lines[: spooled // 2])
    fresh = from_json_lines(lines[spooled // 2 :])
    fresh = fresh.set_column(
        fresh.schema.get_field_index("request_id"),
        "request_id",
        pa.array([f"spooled-{i:08d}" for i in range(len(fresh))]),
    )
    spool = Spool(data_dir / "spool", "bench")
    spool.append_sync(known)
    spool.append_sync(fresh)
    stored_outcomes = sum(1 for _ in complete_lines(data_dir / "outcomes.jsonl"))
    size = sum(path.stat().st_size for path in days)
    return {
        "decisions": decisions,
        "outcomes": stored_outcomes,
        "spooled": spooled,
        "spooled_new": len(fresh),
        "file_bytes": size,
        "bytes_per_record": round(size / decisions),
        "fill_s": round(time.monotonic() - started, 1),
    }


class PeakRss:
    """The LogWriter replica's RSS, sampled every 0.1 s; ``phase()`` resets the peak."""

    def __init__(self) -> None:
        self.peak = 0
        self.process: psutil.Process | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _find(self) -> psutil.Process | None:
        for process in psutil.process_iter():
            try:
                if "ServeReplica:credit:LogWriter" in " ".join(process.cmdline()):
                    return process
            except psutil.Error:
                continue
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.process = self.process or self._find()
                if self.process is not None:
                    self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                self.process = None
            time.sleep(0.1)

    def phase(self, run: Callable[[], Any], reset: bool = True) -> dict[str, Any]:
        time.sleep(0.3)
        if reset:
            self.peak = self.process.memory_info().rss if self.process else 0
        before = self.peak
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
        time.sleep(0.3)
        return {
            "seconds": round(seconds, 2),
            "rss_before_mb": round(before / 2**20),
            "peak_rss_mb": round(self.peak / 2**20),
            **(result or {}),
        }

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()


def measure(data_dir: Path, filled: dict[str, Any]) -> dict[str, Any]:
    since = (datetime.now(UTC) - timedelta(days=DAYS + 1)).isoformat()
    window = {"since": since}
    expected = filled["decisions"] + filled["spooled_new"]
    results: dict[str, Any] = {}
    env = {"DATA_DIR": str(data_dir), "DATABASE_URL": "", "API_KEY": API_KEY}
    with (
        PeakRss() as rss,
        ServerProcess(ServerConfig("file-log-scale"), env=env, log=data_dir.parent / "serve.log") as server,
        httpx.Client(base_url=server.url, timeout=600, headers={"X-API-Key": API_KEY}) as client,
    ):

        def stats() -> dict[str, Any]:
            return client.get("/predictions/stats").raise_for_status().json()

        # the replay runs as the LogWriter starts: its peak is the process's since then, not reset
        results["start_and_replay"] = rss.phase(
            lambda: wait_until(
                lambda: (s := stats())["spool_records"] == 0 and s["records_in_store"] == expected and s,
                timeout_s=1800,
                interval_s=0.5,
                what="the spool replayed",
            ),
            reset=False,
        )
        # 10,000 outcomes of replayed decisions (none has one yet): each id is checked against the whole file
        body = [{"request_id": f"spooled-{i:08d}", "defaulted": i % 2} for i in range(10_000)]
        results["post_outcomes_10000"] = rss.phase(
            lambda: {"status": (r := client.post("/outcomes", json=body)).status_code, "receipt": r.json()}
        )
        for name, path in (
            ("performance", "/performance"),
            ("challenger", "/challenger"),
            ("summary", "/predictions/summary"),
            ("fairness", "/fairness"),
        ):

            def get(path: str = path) -> dict[str, Any]:
                response = client.get(path, params=window)
                if response.headers.get("content-type") != "application/json":
                    return {"status": response.status_code, "body": response.text[:200]}
                answer = response.json()
                return {
                    "status": response.status_code,
                    **({"labelled": answer.get("labelled")} if "labelled" in answer else {}),
                    **({"decisions": answer.get("decisions")} if "decisions" in answer else {}),
                }

            results[name] = rss.phase(get)
        day = {"since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
        for name, path in (("summary_24h", "/predictions/summary"), ("performance_7d", "/performance")):
            params = day if name.endswith("24h") else {"since": (datetime.now(UTC) - timedelta(days=7)).isoformat()}
            def read(path: str = path, params: dict[str, str] = params) -> dict[str, Any]:
                r = client.get(path, params=params)
                if r.headers.get("content-type") != "application/json":
                    return {"status": r.status_code, "body": r.text[:200]}
                body = r.json()
                return {"status": r.status_code, **{k: body.get(k) for k in ("decisions", "labelled") if k in body}}

            results[name] = rss.phase(read)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--outcomes", type=int, default=200_000)
    parser.add_argument("--spooled", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "file_log_scale.json")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="file-log-scale-"))
    data_dir = root / "data"
    report: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "store": fill(data_dir, args.decisions, args.outcomes, args.spooled),
    }
    print(json.dumps(report["store"]))
    report["reads"] = measure(data_dir, report["store"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
