"""Prometheus metrics on Ray's metrics agent: the app's counters exist and move with traffic."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.reference import sample_applicants
from tests.support.serving import RunningApp

Samples = dict[str, float]


def scrape(url: str) -> list:
    return list(text_string_to_metric_families(httpx.get(url, timeout=10).text))


def total(families: list, sample_name: str, **labels: str) -> float:
    """Sum of a sample over every series (replica, worker) whose labels include ``labels``."""
    return sum(s.value for f in families for s in f.samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_for(url: str, done: Callable[[list], bool], timeout_s: float = 30) -> list:
    deadline = time.monotonic() + timeout_s
    while not done(families := scrape(url)):
        assert time.monotonic() < deadline, "metrics did not reach the expected values"
        time.sleep(0.5)
    return families


def test_counters_move_with_traffic(file_app: RunningApp, metrics_url: str) -> None:
    applicants = sample_applicants(100, seed=41)
    before = scrape(metrics_url)
    with file_app.client() as client:
        singles = [client.post("/predict", json=a).json() for a in applicants[:30]]
        batch = client.post("/predict/batch", json=applicants[30:]).json()["results"]
    answers = singles + batch
    denied = sum(a["credit_decision"] == "denied" for a in answers)

    def delta(families: list, name: str, **labels: str) -> float:
        return total(families, name, **labels) - total(before, name, **labels)

    band = sum(0.02 < a["probability_default"] <= 0.05 for a in answers)
    # Each replica's worker reports on its own clock: wait until every expected count has arrived.
    # The probability distribution is a counter per bucket (not cumulative), counted per block.
    expected = {
        ("ray_credit_decisions_total", ()): 100,
        ("ray_credit_decisions_total", (("decision", "denied"),)): denied,
        ("ray_credit_decisions_total", (("endpoint", "batch"),)): 70,
        ("ray_credit_probability_default_bucket_total", ()): 100,
        ("ray_credit_probability_default_bucket_total", (("le", "0.05"),)): band,
        ("ray_credit_ingress_batch_rows_count", (("source", "request"),)): 1,
        ("ray_credit_ingress_batch_rows_bucket", (("source", "request"), ("le", "64.0"))): 0,
        ("ray_credit_ingress_batch_rows_bucket", (("source", "request"), ("le", "128.0"))): 1,
        ("ray_credit_scorer_rows_total", ()): 100,
        ("ray_credit_log_records_total", (("outcome", "written"),)): 100,
    }
    after = wait_for(metrics_url, lambda f: all(
        delta(f, name, **dict(labels)) >= value for (name, labels), value in expected.items()))
    assert {key: delta(after, key[0], **dict(key[1])) for key in expected} == expected
    assert 1 <= delta(after, "ray_credit_ingress_batch_rows_count", source="micro_batch") <= 30
    assert 2 <= delta(after, "ray_credit_scorer_batch_rows_count") <= 31
    names = {s.name for f in after for s in f.samples}
    assert {"ray_credit_log_writer_queue_records", "ray_credit_log_spool_records",
            "ray_credit_log_buffer_records"} <= names
    assert any(n.startswith("ray_serve_") for n in names), "Ray Serve's own metrics are missing"
