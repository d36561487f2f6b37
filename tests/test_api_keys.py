"""API keys: scopes, rotation (several valid keys), wrong and empty keys, the optional key for scoring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.api_keys import key_ring, parse_scoped_keys
from core.features import EXAMPLE_APPLICANT
from core.settings import Settings
from tests.support.in_process import InProcessBackend, serving

FULL = "full-key-0123456789"
READER = "reader-key-0123456789"
FEEDER = "feeder-key-0123456789"
OLD_READER = "old-reader-key-0123456"
SCORER = "scorer-key-0123456789"
SCOPED = f"read:{READER} outcomes:{FEEDER},read:{OLD_READER} score:{SCORER}"


def _client(data_dir: Path, scoring_requires_key: bool) -> Iterator[TestClient]:
    with serving(InProcessBackend(data_dir, FULL, SCOPED, scoring_requires_key)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, scoring_requires_key=False)


@pytest.fixture
def closed_scoring(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path, scoring_requires_key=True)


def _outcome(client: TestClient, key: str) -> int:
    decided = client.post("/predict", json=EXAMPLE_APPLICANT).json()
    return client.post("/outcomes", json=[{"request_id": decided["request_id"], "defaulted": 0}],
                       headers={"X-API-Key": key}).status_code


@pytest.mark.parametrize("key", [FULL, READER, OLD_READER])
def test_every_key_with_scope_read_reads_the_log(client: TestClient, key: str) -> None:
    """Two read keys valid at once: clients move from the old to the new without downtime."""
    assert client.get("/predictions", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/performance", headers={"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize("key", [FEEDER, SCORER])
def test_a_key_without_scope_read_is_403_on_the_log(client: TestClient, key: str) -> None:
    for path in ("/predictions", "/predictions/stats", "/performance", "/challenger", "/model/changes"):
        response = client.get(path, headers={"X-API-Key": key})
        assert response.status_code == 403 and "read" in response.json()["detail"], path


@pytest.mark.parametrize("key", [None, "", " ", "wrong", READER[:-1], READER + "x", "read:" + READER])
def test_missing_empty_and_wrong_keys_are_401(client: TestClient, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    response = client.get("/predictions", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "X-API-Key"


def test_outcomes_need_scope_outcomes(client: TestClient) -> None:
    assert _outcome(client, FEEDER) == 200
    assert _outcome(client, FULL) == 200
    assert _outcome(client, READER) == 403
    assert _outcome(client, "wrong") == 401


def test_scoring_is_open_by_default(client: TestClient) -> None:
    assert client.post("/predict", json=EXAMPLE_APPLICANT).status_code == 200


def test_scoring_key_when_required(closed_scoring: TestClient) -> None:
    for path, body in (("/predict", EXAMPLE_APPLICANT), ("/predict/batch", [EXAMPLE_APPLICANT])):
        assert closed_scoring.post(path, json=body).status_code == 401
        assert closed_scoring.post(path, json=body, headers={"X-API-Key": READER}).status_code == 403
        assert closed_scoring.post(path, json=body, headers={"X-API-Key": SCORER}).status_code == 200
        assert closed_scoring.post(path, json=body, headers={"X-API-Key": FULL}).status_code == 200
    assert closed_scoring.get("/health").status_code == 200


@pytest.mark.parametrize("text, named", [("reader:" + READER, "scope"), ("read" + READER, "scope"),
                                         ("read:short", "16 characters"), ("read+write:" + READER, "scope"),
                                         (":" + READER, "scope")])
def test_bad_key_entries_are_refused_by_name(text: str, named: str) -> None:
    """The error (logged every second while the file is bad) names the entry's position, never its characters."""
    with pytest.raises(ValueError, match=named) as refused:
        parse_scoped_keys(text)
    assert READER[:5] not in str(refused.value)   # "reade": a prefix of the secret


def test_key_ring_from_settings(tmp_path) -> None:
    ring = key_ring(Settings(api_key=FULL, api_keys=SCOPED, data_dir=tmp_path))
    assert ring.allows(FULL, "score") and ring.allows(FEEDER, "outcomes") and not ring.allows(FEEDER, "read")
    assert not ring.allows("", "read") and not ring.knows(None)
    generated = key_ring(Settings(api_key="", api_keys="", data_dir=tmp_path))
    assert generated.allows((tmp_path / "api_key").read_text().strip(), "read")
    assert len(generated.keys) == 1
