"""Outcome feedback over the real routes (in-process backend): POST /outcomes as specified, and
GET /performance equal to the figures computed here from what the client saw and sent."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from core.reference import sample_applicants
from models.threshold import FN_COST, FP_COST
from tests.conftest import API_KEY
from tests.support.in_process import InProcessBackend, on_loop

KEY = {"X-API-Key": API_KEY}


def decide(client: TestClient, n: int, seed: int = 3) -> list[dict]:
    response = client.post("/predict/batch", json=sample_applicants(n, seed=seed))
    assert response.status_code == 200
    return response.json()["results"]


def post(client: TestClient, body: object, key: dict[str, str] = KEY):
    return client.post("/outcomes", json=body, headers=key)


def test_outcomes_stored_once_unknown_reported_duplicates_counted(
    local_api: tuple[TestClient, InProcessBackend],
) -> None:
    client, backend = local_api
    decided = decide(client, 5)
    ids = [d["request_id"] for d in decided]
    body = [
        {"request_id": ids[0], "defaulted": 1},
        {"request_id": ids[1], "defaulted": 0},
        {"request_id": "never-decided", "defaulted": 1},
        {"request_id": ids[1], "defaulted": 0},
    ]
    first = post(client, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 2, "unknown_request_ids": ["never-decided"], "duplicates": 1}
    again = post(client, body)
    assert again.json() == {"accepted": 0, "unknown_request_ids": ["never-decided"], "duplicates": 3}
    assert on_loop(client, backend.outcomes_of, ids) == {ids[0]: 1, ids[1]: 0}


def test_conflicting_outcome_is_409_naming_it_and_stores_nothing(
    local_api: tuple[TestClient, InProcessBackend],
) -> None:
    client, backend = local_api
    ids = [d["request_id"] for d in decide(client, 3, seed=4)]
    assert post(client, [{"request_id": ids[0], "defaulted": 0}]).status_code == 200
    response = post(client, [{"request_id": ids[1], "defaulted": 1}, {"request_id": ids[0], "defaulted": 1}])
    assert response.status_code == 409
    assert response.json()["detail"]["conflicting_request_ids"] == [ids[0]]
    assert on_loop(client, backend.outcomes_of, ids) == {ids[0]: 0}
    within = post(client, [{"request_id": ids[2], "defaulted": 1}, {"request_id": ids[2], "defaulted": 0}])
    assert within.status_code == 409 and on_loop(client, backend.outcomes_of, ids) == {ids[0]: 0}


@pytest.mark.parametrize(
    "body, field",
    [
        ([{"request_id": "a", "defaulted": 2}], "defaulted"),
        ([{"request_id": "a", "defaulted": "yes"}], "defaulted"),
        ([{"defaulted": 1}], "request_id"),
        ([{"request_id": "a", "defaulted": 1, "observed_at": "yesterday"}], "observed_at"),
        ([{"request_id": "a", "defaulted": 1, "observed_at": "2026-11-01T00:00:00"}], "observed_at"),
        ([{"request_id": "a", "defaulted": 1, "extra": 1}], "extra"),
        ([{"request_id": "x" * 65, "defaulted": 1}], "request_id"),
    ],
)
def test_bad_outcome_is_422_naming_row_and_field(
    local_api: tuple[TestClient, InProcessBackend], body: list, field: str
) -> None:
    client, _ = local_api
    response = post(client, body)
    assert response.status_code == 422
    assert any(error["loc"][-1] == field and 0 in error["loc"] for error in response.json()["detail"])


def test_outcome_bodies_refused_whole(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, backend = local_api
    stored = on_loop(client, backend.log.outcome_store().count)
    assert post(client, []).status_code == 422
    assert post(client, {"request_id": "a", "defaulted": 1}).status_code == 422
    assert post(client, [{"request_id": str(i), "defaulted": 0} for i in range(10_001)]).status_code == 422
    assert (
        client.post("/outcomes", content=b"[{", headers=KEY | {"content-type": "application/json"}).status_code == 422
    )
    assert client.post("/outcomes", content=b"[]", headers=KEY | {"content-type": "text/plain"}).status_code == 415
    assert on_loop(client, backend.log.outcome_store().count) == stored


def test_outcomes_and_performance_need_the_key(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, _ = local_api
    for key in ({}, {"X-API-Key": "wrong"}):
        assert post(client, [{"request_id": "a", "defaulted": 1}], key).status_code == 401
        assert client.get("/performance", headers=key).status_code == 401


def test_performance_equals_figures_from_what_the_client_saw(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, _ = local_api
    since = datetime.now(UTC).isoformat()  # the session's backend holds other tests' decisions
    decided = decide(client, 2000, seed=11)
    rng = np.random.default_rng(5)
    p = np.array([d["probability_default"] for d in decided])
    truth = (rng.random(len(p)) < p).astype(int)
    labelled = slice(0, 1500)  # a quarter of the decisions has no outcome yet
    assert (
        post(
            client,
            [{"request_id": d["request_id"], "defaulted": int(y)} for d, y in zip(decided[labelled], truth[labelled])],
        ).json()["accepted"]
        == 1500
    )

    report = client.get("/performance", params={"by": "week", "since": since}, headers=KEY)
    assert report.status_code == 200, report.text
    body = report.json()
    version = decided[0]["model_version"]
    figures = body["model_versions"][version]
    p, y = p[labelled], truth[labelled]
    denied = np.array([d["credit_decision"] == "denied" for d in decided[labelled]])
    assert figures["labelled"] == 1500 == body["labelled"]
    assert figures["default_rate"] == pytest.approx(y.mean())
    # counted in 1,000 probability bins (as PostgreSQL counts them): within its resolution; answers carry 6 decimals
    assert abs(figures["auc"] - roc_auc_score(y, p)) <= figures["auc_resolution"] + 1e-4
    assert figures["cost"] == FN_COST * np.sum(~denied & (y == 1)) + FP_COST * np.sum(denied & (y == 0))
    assert sum(row["count"] for row in figures["calibration"]) == 1500 and len(figures["calibration"]) == 10
    assert figures["expected"]["auc"] > 0.7 and figures["expected"]["cost"] == pytest.approx(
        figures["expected"]["cost_per_decision"] * 1500
    )
    assert [(period["model_version"], period["labelled"]) for period in body["periods"]] == [(version, 1500)]

    other = client.get("/performance", params={"model_version": "no-such-model", "since": since}, headers=KEY).json()
    assert other["labelled"] == 0 and other["periods"] == []
    assert client.get("/performance", params={"by": "month"}, headers=KEY).status_code == 422
    future = client.get("/performance", params={"since": "2100-01-01T00:00:00Z"}, headers=KEY).json()
    assert future["labelled"] == 0
