"""What hostile keyless clients cost the others: ``/predict`` throughput under wrk, alone and beside clients
posting the amplification body in a loop, on the README's run (file log).

    uv run python -m loadtest.bench_hostile [--duration 10] [--clients 8]

The body is 10,000 empty objects (30 KB) to ``/predict/batch``, no key: before the validation cap it drew an
11.4 MB 422 in 0.77 s, and 8 such clients took ``/predict`` from 1,472 to 0.7 req/s. Writes JSON to ``--out``
(``reports/hostile.json``) with both wrk runs and the CPU share of every process during each, the hostile
answers' sizes and statuses, and the ratio; the
target (issue 24) is ``/predict`` at ≥ 0.8× its throughput without them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from core.reference import sample_applicants
from core.settings import PROJECT_ROOT, IngressConfig
from loadtest.bench_serving import run_wrk
from loadtest.bench_throughput import with_cpu
from loadtest.server_process import ServerConfig, ServerProcess

HOSTILE_BODY = b"[" + b",".join([b"{}"] * 10_000) + b"]"
TARGET_RATIO = 0.8


class HostileClients:
    """``clients`` threads posting the hostile body back to back until stopped; what they got back."""

    def __init__(self, url: str, clients: int) -> None:
        self.url, self.clients = url, clients
        self.statuses: Counter[int] = Counter()
        self.largest_answer = 0
        self.slowest_s = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    response = client.post(f"{self.url}/predict/batch", content=HOSTILE_BODY,
                                           headers={"content-type": "application/json"})
                    status, size = response.status_code, len(response.content)
                except httpx.HTTPError:
                    status, size = 0, 0
                with self._lock:
                    self.statuses[status] += 1
                    self.largest_answer = max(self.largest_answer, size)
                    self.slowest_s = max(self.slowest_s, time.perf_counter() - started)

    def __enter__(self) -> HostileClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def measure(duration: int, clients: int, log: Path) -> dict[str, Any]:
    singles = [json.dumps(a) for a in sample_applicants(500, seed=1)]
    env = {"DATA_DIR": str(log.parent / "data"), "DATABASE_URL": ""}
    with ServerProcess(ServerConfig("hostile"), env=env, log=log) as server:
        run_wrk(server.url, "/predict", singles, 64, 3)   # warm-up
        alone = with_cpu(lambda: run_wrk(server.url, "/predict", singles, 64, duration))
        with HostileClients(server.url, clients) as hostile:
            beside = with_cpu(lambda: run_wrk(server.url, "/predict", singles, 64, duration))
    ratio = round(beside["req_per_s"] / alone["req_per_s"], 3) if alone["req_per_s"] else None
    pacing = IngressConfig().model_dump(include={"rejections_per_s", "rejection_delay_s", "max_delayed_rejections"})
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hostile_clients": clients, "pacing": pacing,
            "hostile_body_bytes": len(HOSTILE_BODY), "predict_alone": alone, "predict_beside_hostile": beside,
            "hostile_answers": {"statuses": dict(hostile.statuses), "largest_bytes": hostile.largest_answer,
                                "slowest_s": round(hostile.slowest_s, 3)},
            "ratio": ratio, "target_ratio": TARGET_RATIO, "met": ratio is not None and ratio >= TARGET_RATIO}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "hostile.json")
    args = parser.parse_args()
    report = measure(args.duration, args.clients, Path(tempfile.mkdtemp(prefix="hostile-")) / "serve.log")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"/predict alone {report['predict_alone']['req_per_s']:,.0f} req/s, beside {args.clients} hostile clients "
          f"{report['predict_beside_hostile']['req_per_s']:,.0f} req/s: {report['ratio']}× (target "
          f"{TARGET_RATIO}); hostile answers {report['hostile_answers']}")
    for run in ("predict_alone", "predict_beside_hostile"):
        print(run, report[run]["cpu_percent_of_a_core"])


if __name__ == "__main__":
    main()
