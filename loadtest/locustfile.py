"""Locust users for the credit-scoring API (run headless by ``python -m loadtest.bench``).

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 SingleRowUser
    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 --tags batch

Classes (or tags): ``SingleRowUser`` (single), ``BatchUser`` (batch), ``MixedUser`` (mixed:
/predict, /predict/batch, /predictions reads, /health). Applicants are sampled from the
model's reference sample. A small share of requests is deliberately invalid and must be
answered 422 (anything else counts as a failure). Settings by environment:
``LOADTEST_BATCH_SIZE`` (100), ``LOADTEST_INVALID_SHARE`` (0.02), ``API_KEY`` for reads,
``LOADTEST_SUMMARY`` (a JSON file for the final figures), ``LOADTEST_DURATION`` (seconds of
load from the test's start; Locust's own ``-t`` also counts its start-up).
"""

# ruff: noqa: I001  (locust must be imported first)
from __future__ import annotations

# Locust first: gevent must monkey-patch before anything imports ssl.
import locust
from locust import FastHttpUser, constant, events, tag, task
from locust.env import Environment
from locust.runners import WorkerRunner

import json
import os
import resource
import time

import gevent
import psutil
import random
from typing import Any

from core.reference import sample_applicants
from core.features import FEATURES

BATCH_SIZE = int(os.environ.get("LOADTEST_BATCH_SIZE", "100"))
INVALID_SHARE = float(os.environ.get("LOADTEST_INVALID_SHARE", "0.02"))
API_KEY = os.environ.get("API_KEY", "")
SUMMARY_PATH = os.environ.get("LOADTEST_SUMMARY", "")
DURATION_S = float(os.environ.get("LOADTEST_DURATION", "0"))
POOL = sample_applicants(5000, seed=7)
_environment: list[Environment] = []


@events.init.add_listener
def _keep_environment(environment: Environment, **_: Any) -> None:
    _environment.append(environment)


def _own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (``--processes`` workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(getattr(times, k, 0.0) for k in ("user", "system", "nice", "irq", "softirq"))


_started: dict[str, float] = {}


@events.test_start.add_listener
def _stop_after_duration(environment: Environment, **_: Any) -> None:
    """``LOADTEST_DURATION`` seconds measured from the start of the test, not of the process."""
    if not isinstance(environment.runner, WorkerRunner):
        _started.update(cpu=_own_cpu_s(), machine=_machine_busy_s(), wall=time.monotonic())
        if DURATION_S:
            gevent.spawn_later(DURATION_S, _end_load, environment)


def _end_load(environment: Environment) -> None:
    """Close the measured period (figures below are over it), then stop the users and quit."""
    _started.update(end_cpu=_own_cpu_s(), end_machine=_machine_busy_s(), end_wall=time.monotonic())
    if environment.runner is not None:
        environment.runner.quit()


@events.quit.add_listener
def _write_summary(exit_code: int, **_: Any) -> None:
    """``LOADTEST_SUMMARY``: per-request-name figures taken after every user stopped (final counts)."""
    if not SUMMARY_PATH or not _environment or isinstance(_environment[0].runner, WorkerRunner):
        return
    stats = _environment[0].stats
    entries = [*stats.entries.values(), stats.total]
    wall = _started.get("end_wall", time.monotonic()) - _started["wall"]
    load = {"elapsed_s": wall,
            "locust_cores": (_started.get("end_cpu", _own_cpu_s()) - _started["cpu"]) / wall,
            "machine_cores_busy": (_started.get("end_machine", _machine_busy_s()) - _started["machine"]) / wall}
    summary = [
        {
            **load,
            "method": e.method or "",
            "name": e.name,
            "requests": e.num_requests,
            "failures": e.num_failures,
            **{f"p{p}_ms": (e.get_response_time_percentile(p / 100) if e.num_requests else None) for p in (50, 95, 99)},
        }
        for e in entries
    ]
    with open(SUMMARY_PATH, "w") as out:
        json.dump(summary, out)


def invalid_applicant(rng: random.Random) -> tuple[dict[str, Any], str]:
    """A pool applicant with one field broken (out of range, missing or a string); returns it and the field."""
    body = dict(rng.choice(POOL))
    feature = rng.choice(FEATURES)
    kind = rng.choice(("range", "missing", "string"))
    if kind == "range":
        body[feature.name] = feature.high + 1
    elif kind == "missing":
        del body[feature.name]
    else:
        body[feature.name] = "abc"
    return body, feature.name


class _ScoringUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: each user sends as fast as it is answered

    def on_start(self) -> None:
        self.rng = random.Random()

    def predict(self) -> None:
        if self.rng.random() < INVALID_SHARE:
            self.predict_invalid()
            return
        with self.client.post("/predict", json=self.rng.choice(POOL), name="/predict", catch_response=True) as r:
            if r.status_code != 200 or r.json().get("credit_decision") not in ("approved", "denied"):
                r.failure(f"status {r.status_code}")

    def predict_invalid(self) -> None:
        body, field = invalid_applicant(self.rng)
        with self.client.post("/predict", json=body, name="/predict (invalid)", catch_response=True) as r:
            if r.status_code != 422 or field not in r.text:
                r.failure(f"expected 422 naming {field}, got {r.status_code}")
            else:
                r.success()

    def predict_batch(self) -> None:
        rows = self.rng.choices(POOL, k=BATCH_SIZE)
        with self.client.post("/predict/batch", json=rows, name="/predict/batch", catch_response=True) as r:
            if r.status_code != 200 or r.json().get("count") != BATCH_SIZE:
                r.failure(f"status {r.status_code}")


class SingleRowUser(_ScoringUser):
    """Single-row ``POST /predict``."""

    @tag("single")
    @task
    def single(self) -> None:
        self.predict()


class BatchUser(_ScoringUser):
    """``POST /predict/batch`` with ``LOADTEST_BATCH_SIZE`` rows."""

    @tag("batch")
    @task
    def batch(self) -> None:
        self.predict_batch()


class MixedUser(_ScoringUser):
    """Mostly single rows, some batches, log reads and health checks."""

    @tag("mixed")
    @task(20)
    def single(self) -> None:
        self.predict()

    @tag("mixed")
    @task(2)
    def batch(self) -> None:
        self.predict_batch()

    @tag("mixed")
    @task(1)
    def read_log(self) -> None:
        with self.client.get(
            "/predictions",
            params={"limit": 20},
            headers={"X-API-Key": API_KEY},
            name="/predictions",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")

    @tag("mixed")
    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="/health")


__all__ = ["BatchUser", "MixedUser", "SingleRowUser", "locust"]
