"""The server with least privilege in PostgreSQL: the owner sets up the schema and the role
(``python -m prediction_log.pg_schema``), the server then logs, replays, reads and records outcomes as that
role — which can change nothing else."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import numpy as np
import pytest

from core.artifacts import resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from deployments.decisions import decision_block
from models.baseline import load_baseline
from prediction_log import pg_histograms
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, drift_bins
from prediction_log.outcomes import Outcomes, PostgresOutcomes
from prediction_log.pg_schema import grant
from prediction_log.postgres_store import PostgresStore
from prediction_log.query import LogQuery
from tests.pg_cluster import PgCluster

APP_ROLE, APP_PASSWORD = "scoring_app", "app-password-0123456789"


def _block(n: int, seed: int):
    rows = np.array([[a[name] for name in FEATURE_NAMES] for a in sample_applicants(n, seed=seed)], dtype=np.float64)
    return decision_block(rows, np.linspace(0.01, 0.9, n), "test-version", 0.5, 1.0, "batch")


def test_the_app_role_logs_and_reads_but_changes_nothing_else(pg: PgCluster) -> None:
    owner = pg.dsn
    app = owner.replace("postgres@", f"{APP_ROLE}:{APP_PASSWORD}@", 1)

    async def scenario() -> None:
        assert await grant(owner, app) == APP_ROLE
        assert await grant(owner, app) == APP_ROLE   # idempotent: a second start of the stack
        store = await PostgresStore.connect(app)     # no DDL right: finds the schema in place
        try:
            first = _block(20, 1)
            assert await store.insert(first) == 20
            assert await store.replay(first) == 0       # the spool's idempotent merge: SELECT + INSERT only
            assert await store.count() == 20            # the aggregates the owner's trigger keeps
            summary = await store.summary(None, None)
            assert summary["decisions"] == 20 and summary["latency_ms_quantiles"]["p50"] is not None
            bins = drift_bins(load_baseline(resolve_model_dir(None)).frame)
            assert await store.histograms(bins, None, None) is None   # registers the bins: counted from now on
            assert await store.histograms(bins, datetime.now(timezone.utc) + timedelta(hours=2), None) is not None
            async with store.pool.acquire() as conn:   # adds its blocks' counts through the owner's function only
                assert await pg_histograms.may_add(conn, 5)
                total = await conn.fetchval(f"SELECT sum(decisions) FROM {pg_histograms.TABLE}")
                await conn.execute(f"SELECT {pg_histograms.ADD}($1, $2, $3, $4, $5, $6)", [datetime.now(timezone.utc)],
                                   [LATENCY.id], [LATENCY_VARIABLE], ["test-version"], [1], [-total])
                assert await conn.fetchval(f"SELECT sum(decisions) FROM {pg_histograms.TABLE}") == total  # never less
            logged = await store.query(LogQuery(limit=5))
            assert len(logged) == 5
            outcomes = PostgresOutcomes(store)
            ids = [r["request_id"] for r in logged]
            receipt = await outcomes.record(Outcomes(ids, [0, 1, 0, 0, 1], [datetime.now(timezone.utc)] * 5))
            assert receipt.accepted == 5
            async with store.pool.acquire() as conn:
                for statement in ("DELETE FROM predictions", "UPDATE outcomes SET defaulted = 1",
                                  "TRUNCATE predictions", "CREATE TABLE intruder (x int)",
                                  "ALTER TABLE predictions ADD COLUMN x int", "DROP TABLE outcomes",
                                  "UPDATE decision_hours SET decisions = 0", "DELETE FROM decision_minutes",
                                  "DELETE FROM model_changes",
                                  "INSERT INTO decision_hours SELECT * FROM decision_hours",
                                  "UPDATE histogram_hours SET decisions = 0", "DELETE FROM histogram_bins",
                                  "UPDATE histogram_bins SET registered_at = '-infinity'"):
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(statement)
                assert not await conn.fetchval("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                                               "WHERE rolname = current_user")
        finally:
            await store.close()

    asyncio.run(scenario())
