"""The default JSONL prediction log: every 200 logged once, the API-key guard, query validation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.features import EXAMPLE_APPLICANT, FEATURE_NAMES
from core.reference import sample_applicants
from prediction_log.stores import OUTCOMES_FILE_NAME
from tests.support.file_log import log_lines
from tests.support.outcome_checks import outcome_round_trip
from tests.support.serving import RunningApp, send_singles

JSON = {"Content-Type": "application/json"}


def test_log_requires_api_key(file_app: RunningApp) -> None:
    with file_app.client() as client:
        assert client.get("/predictions").status_code == 401
        assert client.get("/predictions", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/predictions/stats").status_code == 401
        assert client.get("/predictions", headers=file_app.auth()).status_code == 200


@pytest.mark.parametrize("params", [
    {"limit": -1}, {"limit": 10**9}, {"limit": "x"}, {"offset": -5}, {"since": "yesterday"},
    {"until": "2026-13-45"}, {"decision": "maybe"},
])
def test_bad_query_parameters_get_422(file_app: RunningApp, params: dict) -> None:
    with file_app.client() as client:
        response = client.get("/predictions", params=params, headers=file_app.auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == next(iter(params))


def test_every_answer_is_logged_exactly_once(file_app: RunningApp) -> None:
    before = file_app.stats()["records_in_store"]
    applicants = sample_applicants(300, seed=7)
    ok, failed = send_singles(file_app.url, applicants)
    with file_app.client() as client:
        batch = client.post("/predict/batch", json=applicants[:120]).json()["results"]
    ok.update({r["request_id"]: r for r in batch})
    assert failed == 0 and len(ok) == 420

    stats = file_app.wait_logged(before + 420)
    assert stats["records_in_store"] == before + 420
    with file_app.client() as client:
        rows = client.get("/predictions", params={"limit": 1000}, headers=file_app.auth()).json()["items"]
    logged = {r["request_id"]: r for r in rows}
    assert set(ok) <= set(logged)
    for request_id, answer in ok.items():
        row = logged[request_id]
        assert round(row["probability_default"], 6) == answer["probability_default"]
        assert row["credit_decision"] == answer["credit_decision"]
        assert row["model_version"] == answer["model_version"]
    by_batch = [logged[r["request_id"]] for r in batch]
    assert [[row[n] for n in FEATURE_NAMES] for row in by_batch] == [
        [a[n] for n in FEATURE_NAMES] for a in applicants[:120]]


def test_large_batches_are_all_logged(file_app: RunningApp) -> None:
    """Full 10,000-row batches back to back: the shipper splits them into bounded calls."""
    before = file_app.stats()["records_in_store"]
    applicants = sample_applicants(10_000, seed=11)
    body = json.dumps(applicants)
    with file_app.client(timeout=60) as client, ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda _: client.post("/predict/batch", content=body, headers=JSON).status_code, range(4))
        )
    assert statuses == [200] * 4
    assert file_app.wait_logged(before + 40_000)["records_in_store"] == before + 40_000


def test_query_filters_and_order(file_app: RunningApp) -> None:
    with file_app.client() as client:
        client.post("/predict", json=EXAMPLE_APPLICANT)
        file_app.wait_logged(file_app.stats()["records_in_store"] + 1, timeout_s=5)
        auth = file_app.auth()
        rows = client.get("/predictions", params={"limit": 50}, headers=auth).json()["items"]
        times = [datetime.fromisoformat(r["ts"]) for r in rows]
        assert times == sorted(times, reverse=True)
        approved = client.get("/predictions", params={"decision": "approved"}, headers=auth).json()["items"]
        assert approved and {r["credit_decision"] for r in approved} == {"approved"}
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert client.get("/predictions", params={"since": future}, headers=auth).json()["count"] == 0
        page = client.get("/predictions", params={"limit": 2, "offset": 1}, headers=auth).json()["items"]
        assert [r["request_id"] for r in page] == [r["request_id"] for r in rows[1:3]]


def test_log_file_is_jsonl_in_data_dir(file_app: RunningApp) -> None:
    lines = log_lines(file_app.data_dir)
    assert lines and all(line.startswith('{"request_id":') for line in lines)
    assert httpx.get(f"{file_app.url}/health").status_code == 200


def test_ten_thousand_row_batch_is_logged_value_for_value(file_app: RunningApp) -> None:
    """Columns not shuffled: every line of the file log carries its own row's inputs and its own answer."""
    applicants = sample_applicants(10_000, seed=78)
    before = file_app.stats()["records_in_store"]
    with file_app.client(timeout=60) as client:
        results = client.post("/predict/batch", json=applicants).json()["results"]
    assert file_app.wait_logged(before + 10_000)["records_in_store"] == before + 10_000
    lines = log_lines(file_app.data_dir)
    rows = {r["request_id"]: r for r in map(json.loads, lines[-10_000:])}
    for applicant, answer in zip(applicants, results):
        row = rows[answer["request_id"]]
        assert {n: row[n] for n in FEATURE_NAMES} == applicant
        assert round(row["probability_default"], 6) == answer["probability_default"]
        assert row["credit_decision"] == answer["credit_decision"] and row["endpoint"] == "batch"


def test_outcomes_round_trip_in_the_file_log(file_app: RunningApp) -> None:
    """Outcomes land in ``outcomes.jsonl`` beside the log, once each; /performance reads them back."""
    path = file_app.data_dir / OUTCOMES_FILE_NAME

    def stored() -> dict[str, int]:
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        assert len({line["request_id"] for line in lines}) == len(lines), "an outcome stored twice"
        return {line["request_id"]: line["defaulted"] for line in lines}

    outcome_round_trip(file_app, stored)
