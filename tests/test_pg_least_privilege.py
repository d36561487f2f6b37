"""The server with least privilege in PostgreSQL: the owner sets up the schema and the role
(``python -m prediction_log.postgres.schema``), the server then logs, replays, reads and records outcomes as that
role — which can change nothing else."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from core.artifacts import resolve_model_dir
from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from deployments.decisions import decision_block
from models.baseline import load_baseline
from prediction_log.histograms import LATENCY, LATENCY_VARIABLE, drift_bins
from prediction_log.outcomes import Outcomes
from prediction_log.postgres import histograms as pg_histograms
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.schema import grant
from prediction_log.postgres.store import PostgresStore
from prediction_log.query import LogQuery
from tests.support.pg_cluster import PgCluster

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
            assert await store.histograms(bins, datetime.now(UTC) + timedelta(hours=2), None) is not None
            async with store.pool.acquire() as conn:   # adds its blocks' counts through the owner's function only
                assert await pg_histograms.may_add(conn, 5)
                total = await conn.fetchval(f"SELECT sum(decisions) FROM {pg_histograms.TABLE}")
                await conn.execute(f"SELECT {pg_histograms.ADD}($1, $2, $3, $4, $5, $6)", [datetime.now(UTC)],
                                   [LATENCY.id], [LATENCY_VARIABLE], ["test-version"], [1], [-total])
                assert await conn.fetchval(f"SELECT sum(decisions) FROM {pg_histograms.TABLE}") == total  # never less
            logged = await store.query(LogQuery(limit=5))
            assert len(logged) == 5
            outcomes = PostgresOutcomes(store)
            ids = [r["request_id"] for r in logged]
            receipt = await outcomes.record(Outcomes(ids, [0, 1, 0, 0, 1], [datetime.now(UTC)] * 5))
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


def test_the_app_role_cannot_spoil_the_histograms_for_later_decisions(pg: PgCluster) -> None:
    """The issue's attacks with the app role's own rights: counts of the bigint maximum pre-filled for future hours,
    counts under a set that does not exist, bins with a NULL edge, unsorted or of an unknown variable, more sets
    than the trigger can afford. Each is refused; then a live block big enough for the writer's counting and a
    small one for the trigger's both store, and each decision can be found."""
    owner = pg.dsn
    app = owner.replace("postgres@", f"{APP_ROLE}:{APP_PASSWORD}@", 1)
    now = datetime.now(UTC)
    biggest = 2**63 - 1

    async def scenario() -> None:
        await grant(owner, app)
        store = await PostgresStore.connect(app)
        try:
            async with store.pool.acquire() as conn:
                add = f"SELECT {pg_histograms.ADD}($1, $2, $3, $4, $5, $6)"
                for hour, bins_id, count in ((now + timedelta(hours=h), LATENCY.id, biggest) for h in range(2, 5)):
                    with pytest.raises(asyncpg.InvalidParameterValueError):
                        await conn.execute(add, [hour], [bins_id], [LATENCY_VARIABLE], ["test-version"], [3], [count])
                for args in (([now], ["no-such-set"], [LATENCY_VARIABLE], ["v"], [1], [1]),
                             ([now], [LATENCY.id], [LATENCY_VARIABLE], ["v"], [30_000], [1]),
                             ([now], [LATENCY.id], [LATENCY_VARIABLE], ["v"], [1], [biggest])):
                    with pytest.raises(asyncpg.InvalidParameterValueError):
                        await conn.execute(add, *args)
                register = f"INSERT INTO {pg_histograms.BINS_TABLE} (bins_id, variable, edges) VALUES ($1, $2, $3)"
                for bins_id, variable, edges in (("nulls", FEATURE_NAMES[0], [0.1, None, 0.5]),
                                                 ("unsorted", FEATURE_NAMES[0], [0.5, 0.1]),
                                                 ("nan", FEATURE_NAMES[0], [0.1, float("nan")]),
                                                 ("unknown", "request_id", [0.1, 0.5])):
                    with pytest.raises(asyncpg.CheckViolationError):
                        await conn.execute(register, bins_id, variable, edges)
                registered = await conn.fetchval(f"SELECT count(DISTINCT bins_id) FROM {pg_histograms.BINS_TABLE}")
                with pytest.raises(asyncpg.InvalidParameterValueError):
                    for i in range(pg_histograms.MAX_BIN_SETS + 1 - registered):
                        await conn.execute(register, f"set-{i}", FEATURE_NAMES[0], [0.1, 0.5])
            counted_sql = (f"SELECT coalesce(sum(decisions), 0) FROM {pg_histograms.TABLE} WHERE bins_id = $1 "
                           "AND model_version = 'test-version'")
            async with store.pool.acquire() as conn:
                before = await conn.fetchval(counted_sql, LATENCY.id)
            big, small = _block(pg_histograms.WRITER_COUNTS_FROM + 10, 7), _block(5, 8)
            assert await store.insert(big) == len(big) and await store.insert(small) == len(small)
            for block in (big, small):
                for request_id in block.column("request_id").to_pylist()[:3]:
                    assert await store.find(request_id) is not None
            async with store.pool.acquire() as conn:   # counted: by the writer (big) and by the trigger (small)
                assert await conn.fetchval(counted_sql, LATENCY.id) - before == len(big) + len(small)
        finally:
            await store.close()

    asyncio.run(scenario())
