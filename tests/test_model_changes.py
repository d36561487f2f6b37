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
from prediction_log.files.model_changes import FileModelChanges
from prediction_log.model_changes import model_change
from prediction_log.postgres.model_changes import PostgresModelChanges
from prediction_log.postgres.store import PostgresStore
from tests.conftest import API_KEY
from tests.support.in_process import InProcessBackend
from tests.support.pg_cluster import PgCluster
from tests.support.serving import RunningApp, deploy

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
    with store.file.path.open("a") as f:
        f.write("not json\n")
    newest = asyncio.run(store.newest(10))
    assert [e["id"] for e in newest] == [second.id, first.id]
    assert newest[0]["note"] == "ticket 7" and newest[0]["from_version"] == "v1"
    assert store.file.unreadable.count == 1   # counted (and shown in /predictions/stats), not a failure
    assert stat.S_IMODE(store.file.path.stat().st_mode) == 0o600


def test_the_route_needs_scope_read_and_lists_newest_first(local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, backend = local_api
    assert client.get("/model/changes").status_code == 401
    for bad in (0, 1_001, "x"):
        response = client.get(f"/model/changes?limit={bad}", headers={"X-API-Key": API_KEY})
        assert response.status_code == 422 and "limit" in response.text
    items = client.get("/model/changes", headers={"X-API-Key": API_KEY}).json()["items"]
    assert items[0]["event"] == "started" and items[0]["to_version"] == backend.card["version"]


@pytest.mark.slow
def test_postgres_store_keeps_each_entry_once_and_stores_hostile_text(pg: PgCluster) -> None:
    async def run() -> list[dict]:
        log = await PostgresStore.connect(pg.dsn)
        try:
            store = PostgresModelChanges(log)
            entry = model_change("refused", "Challenger", "r2", ("v1", 0.08), ("missing", float("nan")), "gone")
            await store.record([entry])
            await store.record([entry])
            await store.record([model_change("refused", "Scorer", "r2", None, ("nul\x00\ud800", 0.1), None, "\x00")])
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


def test_a_note_or_model_with_nul_or_a_lone_surrogate_still_stores(tmp_path: Path) -> None:
    """Anyone who can deploy could once blind the audit: an entry neither store could hold was resent for ever,
    ahead of every later one. The text is made storable (NUL and lone surrogates replaced)."""
    entry = model_change("refused", "Scorer", "r1", ("v1", 0.08), ("bad\x00model\ud800", 0.1), "x\x00",
                         "note \ud83d with NUL \x00")
    for text in (entry.to_version, entry.note, entry.reason):
        assert text is not None and "\x00" not in text
        text.encode("utf-8")   # no lone surrogate left
    store = FileModelChanges(tmp_path / "model_changes.jsonl")
    asyncio.run(store.record([entry]))
    assert asyncio.run(store.newest(1))[0]["id"] == entry.id


def test_an_entry_the_store_refuses_does_not_hold_back_the_ones_after_it() -> None:
    """The scorer's delivery: a batch that fails is offered entry by entry; the one the store refuses alone is
    logged and dropped, the others stored; while the writer is away every entry waits."""
    from types import SimpleNamespace

    from deployments.scorer import Scorer

    class Writer:
        def __init__(self) -> None:
            self.stored: list[str] = []
            self.away = False

        async def _record(self, entries: list) -> None:
            if self.away or any(e.note == "poison" for e in entries):
                raise ValueError("cannot store")
            self.stored += [e.id for e in entries]

    writer = Writer()
    replica = SimpleNamespace(_log_writer=SimpleNamespace(record_model_changes=SimpleNamespace(remote=writer._record)),
                              _undelivered=[], _name="scorer")
    deliver = Scorer.func_or_class._deliver_once
    good = [model_change("applied", "Scorer", "r1", None, ("v", 0.1), note=str(i)) for i in range(3)]
    poison = model_change("refused", "Scorer", "r1", None, ("v", 0.1), note="poison")
    writer.away = True
    replica._undelivered = [good[0], poison, good[1]]
    asyncio.run(deliver(replica))
    assert replica._undelivered == [good[0], poison, good[1]]   # the writer is away: everything waits
    writer.away = False
    replica._undelivered.append(good[2])
    asyncio.run(deliver(replica))
    assert replica._undelivered == [] and writer.stored == [good[0].id, good[1].id, good[2].id]
