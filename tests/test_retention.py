"""Retention (``python -m prediction_log.retention``) against a throwaway PostgreSQL: with 7 days kept, every older
decision is in the Parquet archive with its outcome and group and gone from the tables, nothing younger is
touched, the aggregates still equal the rows, a second run finds nothing, and the archive is private."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq

from core.settings import PROJECT_ROOT
from prediction_log.groups import GroupPost
from prediction_log.outcomes import Outcomes
from prediction_log.postgres import partitions as pg_partitions
from prediction_log.postgres.groups import PostgresGroups
from prediction_log.postgres.outcomes import PostgresOutcomes
from prediction_log.postgres.store import SQL_COLUMNS, PostgresStore
from prediction_log.records import Block, request_ids, to_pg_binary
from prediction_log.retention import cutoff_for, expire
from tests.support.pg_cluster import PgCluster
from tests.test_aggregates import spread_block

NOW = datetime.now(UTC)


def at(block: Block, start: datetime) -> Block:
    index = block.schema.get_field_index("ts")
    ts = pa.array([start + timedelta(seconds=i) for i in range(len(block))], pa.timestamp("us", tz="UTC"))
    return block.set_column(index, block.schema.field(index), ts)


def test_expired_decisions_are_archived_with_their_outcomes_and_groups_then_deleted(pg: PgCluster,
                                                                                   tmp_path: Path) -> None:
    async def scenario() -> None:
        dsn = await pg.fresh_database("retention_test")
        store = await PostgresStore.connect(dsn)
        try:
            old, young = at(spread_block(120, 5), NOW - timedelta(days=10)), at(spread_block(80, 6), NOW -
                                                                               timedelta(days=1))
            await store.insert(old)
            await store.insert(young)
            old_ids, young_ids = request_ids(old), request_ids(young)
            labelled = old_ids[:30] + young_ids[:20]
            await PostgresOutcomes(store).record(Outcomes(labelled, [1, 0] * 25, [NOW] * 50))
            await PostgresGroups(store).record(GroupPost(old_ids[:10], ["sex"] * 10, ["f"] * 10))

            dry = await expire(dsn, 7, tmp_path / "archive", dry_run=True)
            assert (dry["expired"], dry["archived"], await store.count()) == (120, 0, 200)
            report = await expire(dsn, 7, tmp_path / "archive", chunk=50)
            assert report["archived"] == 120
            again = await expire(dsn, 7, tmp_path / "archive", chunk=50)
            assert (again["expired"], again["archived"]) == (0, 0)

            async with store.pool.acquire() as conn:
                kept = {r[0] for r in await conn.fetch("SELECT request_id FROM predictions")}
                outcome_ids = {r[0] for r in await conn.fetch("SELECT request_id FROM outcomes")}
                group_rows = await conn.fetchval("SELECT count(*) FROM group_membership")
            assert kept == set(young_ids) and outcome_ids == set(young_ids[:20]) and group_rows == 0
            assert await store.count() == 80 == (await store.summary(None, None))["decisions"]
            assert (await PostgresOutcomes(store).for_reports(None, None, None)).decisions == 20   # labelled counts
        finally:
            await store.close()

        archive = tmp_path / "archive"
        decisions = pa.concat_tables([pq.read_table(p) for p in sorted(archive.glob("predictions-*.parquet"))])
        assert sorted(decisions.column("request_id").to_pylist()) == sorted(old_ids)
        outcome_files = sorted(archive.glob("outcomes-*.parquet"))
        assert sum(pq.read_table(p).num_rows for p in outcome_files) == 30
        assert sum(pq.read_table(p).num_rows for p in archive.glob("group_membership-*.parquet")) == 10
        assert {stat.S_IMODE(p.stat().st_mode) for p in archive.iterdir()} == {0o600}
        assert stat.S_IMODE(archive.stat().st_mode) == 0o700

    asyncio.run(scenario())


def test_the_documented_command_dry_runs(pg: PgCluster, tmp_path: Path) -> None:
    async def schema() -> None:
        await (await PostgresStore.connect(pg.dsn)).close()

    asyncio.run(schema())
    done = subprocess.run([sys.executable, "-m", "prediction_log.retention", "--dry-run", "--database-url", pg.dsn,
                           "--archive-dir", str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] and report["keep_days"] == 762 and report["archived"] == 0


def test_expired_months_are_dropped_and_a_late_replay_still_expires(pg: PgCluster, tmp_path: Path) -> None:
    """A new log is partitioned by month (a default partition for the rest); retention archives the expired rows,
    drops the months wholly past the cutoff, keeps the rest, and a replay into a dropped month is not lost."""
    async def scenario() -> None:
        dsn = await pg.fresh_database("partition_retention_test")
        store = await PostgresStore.connect(dsn)
        try:
            blocks = [
                at(spread_block(10, i), NOW - timedelta(days=days)) for i, days in enumerate((150, 100, 70, 45, 20, 1))
            ]
            for block in blocks:
                await store.insert(block)
            async with store.pool.acquire() as conn:
                assert await pg_partitions.is_partitioned(conn, "predictions")
                months = {
                    r[0]
                    for r in await conn.fetch(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'predictions'::regclass"
                    )
                }
            cutoff = cutoff_for(40)
            expected_drop = {
                m
                for m in months
                if m.startswith("predictions_y")
                and pg_partitions.add_months(datetime(int(m[13:17]), int(m[18:20]), 1, tzinfo=UTC), 1) <= cutoff
            }
            assert "predictions_default" in months and expected_drop

            report = await expire(dsn, 40, tmp_path / "archive", chunk=7)
            young = [i for b in blocks for i, ts in zip(request_ids(b), b.column("ts").to_pylist()) if ts >= cutoff]
            assert report["archived"] == 60 - len(young) and set(report["partitions_dropped"]) == expected_drop
            async with store.pool.acquire() as conn:
                assert {r[0] for r in await conn.fetch("SELECT request_id FROM predictions")} == set(young)
                left = {
                    r[0]
                    for r in await conn.fetch(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'predictions'::regclass"
                    )
                }
            assert left == months - expected_drop

            late = at(spread_block(3, 9), NOW - timedelta(days=120))  # a spool replayed into a dropped month
            assert await store.replay(late) == 3
            again = await expire(dsn, 40, tmp_path / "archive", chunk=7)
            assert (again["expired"], again["archived"]) == (3, 3)
            assert await store.count() == len(young) == (await store.summary(None, None))["decisions"]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_row_committed_while_retention_drops_its_month_is_kept(pg: PgCluster) -> None:
    """The check that a month's partition is empty and its drop were two statements: a replay committing a row into
    that month between them lost it unarchived. An insert in progress now holds the drop back, and the month stays."""

    async def scenario() -> None:
        dsn = await pg.fresh_database("retention_race")
        store = await PostgresStore.connect(dsn)
        try:
            old_month = (NOW - timedelta(days=200)).replace(day=1, hour=12)
            conn = await asyncpg.connect(dsn)
            await pg_partitions.ensure_partitions(conn, "predictions", old_month, back=0)
            replaying = await asyncpg.connect(dsn)
            transaction = replaying.transaction()
            await transaction.start()
            await replaying.copy_to_table(
                "predictions",
                source=io.BytesIO(to_pg_binary(at(spread_block(3, 9), old_month))),
                columns=SQL_COLUMNS,
                format="binary",
            )  # not yet committed
            dropping = asyncio.ensure_future(pg_partitions.drop_expired(conn, "predictions", cutoff_for(7, NOW)))
            await asyncio.sleep(1.0)
            await transaction.commit()
            dropped = await dropping
            name = pg_partitions.partition_name("predictions", old_month)
            assert name not in dropped
            assert await conn.fetchval(f"SELECT count(*) FROM {name}") == 3
            await replaying.close()
            await conn.close()
        finally:
            await store.close()

    asyncio.run(scenario())
