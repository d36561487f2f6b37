"""The audit record of model changes: what each scorer replica started with, applied and refused, stored once.

Fast tier: the entry's bounds, the file store's idempotency and mode, the route's key and limit. Slow: the
PostgreSQL store against a throwaway cluster, and a threshold change with a ``change_note`` deployed to the
app logging to it (from the same version and threshold the clients were answered with, to the new ones).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import stat
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.features import EXAMPLE_APPLICANT
from core.polling import wait_until
from prediction_log.model_changes import FileModelChanges, PostgresModelChanges, model_change
from prediction_log.postgres_store import PostgresStore
from tests.conftest import API_KEY
from tests.local_backend import LocalBackend
from tests.pg_cluster import PgCluster
from tests.serving import RunningApp, deploy

APPLY_DEADLINE_S = 60
"""Generous for a loaded CI VM: entries reach the store within a second or two of the change (measured)."""


def test_a_refused_change_asking_for_junk_still_makes_an_entry_that_stores() -> None:
    entry = model_change("refused", "Scorer", "r1", ("v1", 0.08), ("x" * 10_000, "abc"), "ValidationError",
                         {"not": "text"})
    assert entry.to_threshold is None and len(entry.to_version) == 200 and entry.note == "{'not': 'text'}"
    assert model_change("refused", "Scorer", "r1", None, ("v", float("nan"))).to_threshold is None
    assert (entry.host, entry.os_user) == (socket.gethostname(), getpass.getuser())


def test_file_store_keeps_each_entry_once_and_privately(tmp_path: Path) -> None:
    store = FileModelChanges(tmp_path / "model_changes.jsonl")
    first = model_change("started", "Scorer", "r1", None, ("v1", 0.08))
    second = model_change("applied", "Scorer", "r1", ("v1", 0.08), ("v2", 0.1), note="ticket 7")
    asyncio.run(store.record([first]))
    asyncio.run(store.record([first, second]))   # a retried delivery
    with store.path.open("a") as f:
        f.write("not json\n")
    newest = asyncio.run(store.newest(10))
    assert [e["id"] for e in newest] == [second.id, first.id]
    assert newest[0]["note"] == "ticket 7" and newest[0]["from_version"] == "v1"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_the_route_needs_scope_read_and_lists_newest_first(local_api: tuple[TestClient, LocalBackend]) -> None:
    client, backend = local_api
    assert client.get("/model/changes").status_code == 401
    for bad in (0, 1_001, "x"):
        response = client.get(f"/model/changes?limit={bad}", headers={"X-API-Key": API_KEY})
        assert response.status_code == 422 and "limit" in response.text
    items = client.get("/model/changes", headers={"X-API-Key": API_KEY}).json()["items"]
    assert items[0]["event"] == "started" and items[0]["to_version"] == backend.card["version"]


@pytest.mark.slow
def test_postgres_store_keeps_each_entry_once(pg: PgCluster) -> None:
    async def run() -> list[dict]:
        log = await PostgresStore.connect(pg.dsn)
        try:
            store = PostgresModelChanges(log)
            entry = model_change("refused", "Challenger", "r2", ("v1", 0.08), ("missing", float("nan")), "gone")
            await store.record([entry])
            await store.record([entry])
            return [e for e in await store.newest(1_000) if e["id"] == entry.id]
        finally:
            await log.close()

    (stored,) = asyncio.run(run())
    assert stored["to_threshold"] is None and stored["reason"] == "gone" and stored["event"] == "refused"


def test_a_deployed_threshold_change_is_in_the_audit_with_who_and_from_what(pg_app: RunningApp,
                                                                             serve_url: str) -> None:
    with pg_app.client() as client:
        before = client.post("/predict", json=EXAMPLE_APPLICANT).json()
    deploy(serve_url, pg_app.env, log_writer={"retry_interval_s": 0.5},
           scorer={"threshold": 0.2, "change_note": "credit committee 2026-11-30"})
    try:
        def applied() -> dict | None:
            items = httpx.get(f"{pg_app.url}/model/changes", headers=pg_app.auth(), timeout=30).json()["items"]
            return next((e for e in items if e["event"] == "applied" and e["to_threshold"] == 0.2), None)

        entry = wait_until(applied, APPLY_DEADLINE_S, "the applied change in the audit record")
        assert (entry["from_version"], entry["from_threshold"]) == (before["model_version"], before["threshold"])
        assert entry["to_version"] == before["model_version"] and entry["note"] == "credit committee 2026-11-30"
        assert entry["deployment"] == "Scorer" and entry["os_user"] == getpass.getuser() and entry["host"]
    finally:
        deploy(serve_url, pg_app.env, log_writer={"retry_interval_s": 0.5})
