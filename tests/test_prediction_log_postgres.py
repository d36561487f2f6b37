"""PostgreSQL logging against a real throwaway cluster: exactly once, outages, refusals, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import asyncpg
from ray import serve

from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from core.settings import IngressConfig
from tests.support.outcome_checks import outcome_round_trip
from tests.support.pg_cluster import PgCluster
from tests.support.serving import APP_NAME, RunningApp, deploy, send_singles, wait_healthy
from tests.test_resilience import record_figures, replica_pids, rss_mb


def sql(pg: PgCluster, query: str, *args: object) -> list:
    async def run() -> list:
        conn = await asyncpg.connect(pg.dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


class SinglesLoad:
    """/predict traffic on 4 threads until stopped; keeps every 200 answer by request_id and counts the rest."""

    def __init__(self, url: str, seed: int) -> None:
        self.url, self.seed = url, seed
        self.answered: dict[str, dict] = {}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            ok, failed = send_singles(self.url, sample_applicants(40, seed=self.seed), threads=4)
            self.answered.update(ok)
            self.failures += failed
            self.seed += 1

    def start(self) -> SinglesLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def last_id(pg: PgCluster) -> int:
    return sql(pg, "SELECT coalesce(max(id), 0) AS m FROM predictions")[0]["m"]


def ids_after(pg: PgCluster, after_id: int) -> list[str]:
    """request_ids of the rows written since ``after_id`` (one entry per row: a duplicate would show)."""
    return [r["request_id"] for r in sql(pg, "SELECT request_id FROM predictions WHERE id > $1", after_id)]


def wait_ids(pg: PgCluster, after_id: int, expected: int, timeout_s: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while len(ids_after(pg, after_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1.0)   # anything beyond the expected rows (a duplicate) would land now
    return ids_after(pg, after_id)


def test_table_schema_is_typed_and_indexed(pg_app: RunningApp, pg: PgCluster) -> None:
    columns = {r["column_name"]: r["data_type"] for r in sql(
        pg, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'predictions'")}
    assert columns["ts"] == "timestamp with time zone" and columns["DAYS_BIRTH".lower()] == "integer"
    assert columns["probability_default"] == "double precision" and columns["request_id"] == "text"
    indexes = {r["indexname"] for r in sql(pg, "SELECT indexname FROM pg_indexes WHERE tablename = 'predictions'")}
    assert {"predictions_request_id_key", "predictions_ts_idx"} <= indexes


def test_every_answer_is_one_row(pg_app: RunningApp, pg: PgCluster) -> None:
    first = last_id(pg)
    applicants = sample_applicants(400, seed=3)
    ok, failed = send_singles(pg_app.url, applicants)
    with pg_app.client() as client:
        for start in range(0, 300, 100):
            ok.update({r["request_id"]: r for r in
                       client.post("/predict/batch", json=applicants[start:start + 100]).json()["results"]})
    assert failed == 0 and len(ok) == 700
    assert sorted(wait_ids(pg, first, 700)) == sorted(ok)
    rows = {r["request_id"]: r for r in sql(pg, "SELECT * FROM predictions WHERE request_id = ANY($1)", list(ok))}
    assert len(rows) == 700
    for request_id, answer in ok.items():
        assert round(rows[request_id]["probability_default"], 6) == answer["probability_default"]
        assert rows[request_id]["credit_decision"] == answer["credit_decision"]


def test_reason_codes_are_logged_as_jsonb(pg_app: RunningApp, pg: PgCluster) -> None:
    applicants = sample_applicants(20, seed=33)
    with pg_app.client() as client:
        explained = client.post("/predict/batch", params={"explain": "true"}, json=applicants).json()["results"]
        plain = client.post("/predict", json=applicants[0]).json()
    ids = [r["request_id"] for r in explained] + [plain["request_id"]]
    deadline = time.monotonic() + 30
    while len(rows := sql(pg, "SELECT request_id, explanation FROM predictions WHERE request_id = ANY($1)",
                          ids)) < len(ids):
        assert time.monotonic() < deadline, "decisions not logged within 30 s"
        time.sleep(0.3)
    logged = {r["request_id"]: r["explanation"] for r in rows}
    assert logged[plain["request_id"]] is None
    for answer in explained:
        assert json.loads(logged[answer["request_id"]]) == answer["explanation"]


def test_database_outage_mid_load_loses_nothing(pg_app: RunningApp, pg: PgCluster) -> None:
    first = last_id(pg)
    load = SinglesLoad(pg_app.url, seed=100).start()
    time.sleep(1.5)
    pg.stop("fast")
    time.sleep(3.0)
    down_answers = len(load.answered)
    pg.start()
    time.sleep(2.0)
    load.stop()
    answered = load.answered
    assert load.failures == 0 and len(answered) > down_answers > 0
    logged = wait_ids(pg, first, len(answered))
    assert sorted(logged) == sorted(answered), "the rows written are not exactly the answers given"
    stats = pg_app.stats()
    assert stats["spooled"] > 0 and stats["replayed"] > 0 and stats["spool_records"] == 0


def test_row_refused_by_database_is_kept(pg_app: RunningApp, pg: PgCluster) -> None:
    sql(pg, 'ALTER TABLE predictions ADD CONSTRAINT refuse_one CHECK ("amt_annuity" <> 12345.5)')
    try:
        applicants = sample_applicants(20, seed=11)
        applicants[7]["AMT_ANNUITY"] = 12345.5
        with pg_app.client() as client:
            results = client.post("/predict/batch", json=applicants).json()["results"]
        refused_id = results[7]["request_id"]
        ids = [r["request_id"] for r in results]
        deadline = time.monotonic() + 30
        rejected_file = pg_app.data_dir / "rejected.jsonl"
        while not rejected_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        stored = {r["request_id"] for r in sql(pg, "SELECT request_id FROM predictions WHERE request_id = ANY($1)",
                                               ids)}
        assert stored == set(ids) - {refused_id}
        kept = [json.loads(line) for line in rejected_file.read_text().splitlines()]
        assert [k["record"]["request_id"] for k in kept] == [refused_id]
        assert "refuse_one" in kept[0]["error"]
    finally:
        sql(pg, "ALTER TABLE predictions DROP CONSTRAINT refuse_one")


def test_restart_with_spooled_records_replays_them(serve_url: str, pg_app: RunningApp, pg: PgCluster) -> None:
    pg.stop("fast")
    ok, failed = send_singles(pg_app.url, sample_applicants(60, seed=21))
    assert failed == 0 and len(ok) == 60
    deadline = time.monotonic() + 20
    while pg_app.stats()["spool_records"] < 60 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pg_app.stats()["spool_records"] == 60
    serve.delete(APP_NAME)  # graceful shutdown with records still in the spool
    pg.start()
    deploy(serve_url, pg_app.env, log_writer={"retry_interval_s": 0.5})
    deadline = time.monotonic() + 30
    stored: set[str] = set()
    while len(stored) < 60 and time.monotonic() < deadline:
        stored = {
            r["request_id"] for r in sql(pg, "SELECT request_id FROM predictions WHERE request_id = ANY($1)", list(ok))
        }
        time.sleep(0.3)
    assert stored == set(ok)


def test_predictions_endpoint_reads_postgres(pg_app: RunningApp) -> None:
    with pg_app.client() as client:
        rows = client.get("/predictions", params={"limit": 20}, headers=pg_app.auth()).json()["items"]
        denied = client.get("/predictions", params={"decision": "denied", "limit": 5}, headers=pg_app.auth()).json()[
            "items"
        ]
    assert len(rows) == 20 and [r["ts"] for r in rows] == sorted((r["ts"] for r in rows), reverse=True)
    assert set(FEATURE_NAMES) <= set(rows[0])
    assert all(r["credit_decision"] == "denied" for r in denied)


def test_ten_thousand_row_batch_is_logged_value_for_value(pg_app: RunningApp, pg: PgCluster) -> None:
    """Columns not shuffled: every logged row carries its own inputs and its own answer."""
    applicants = sample_applicants(10_000, seed=77)
    first = last_id(pg)
    with pg_app.client(timeout=60) as client:
        results = client.post("/predict/batch", json=applicants).json()["results"]
    assert len(wait_ids(pg, first, 10_000)) == 10_000
    rows = {r["request_id"]: r for r in sql(pg, "SELECT * FROM predictions WHERE id > $1", first)}
    for applicant, answer in zip(applicants, results):
        row = rows[answer["request_id"]]
        assert {n: row[n.lower()] for n in FEATURE_NAMES} == applicant
        assert round(row["probability_default"], 6) == answer["probability_default"]
        assert row["credit_decision"] == answer["credit_decision"] and row["endpoint"] == "batch"


def test_hung_database_under_load_loses_nothing_and_a_killed_ingress_loses_within_the_bound(
    pg_app: RunningApp, pg: PgCluster
) -> None:
    """An ACCESS EXCLUSIVE lock makes every write hang (not fail) for 60 s: writes time out, blocks are
    spooled, answers stay 200 and ingress memory stays bounded. Half-way, one ingress replica is
    SIGKILLed: the answered decisions missing from the table afterwards are counted and must stay within
    the documented bound; every other answer is in the table exactly once."""
    first = last_id(pg)
    ingresses = replica_pids("Ingress")
    rss_before = rss_mb(ingresses)

    async def hold_lock(seconds: float) -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(seconds / 2)
                figures["rss_mb_during_hang"] = round(rss_mb(ingresses), 1)
                figures["answers_before_kill"] = len(load.answered)
                os.kill(ingresses[0], signal.SIGKILL)
                killed_at.append(time.monotonic())
                await asyncio.sleep(seconds / 2)
        finally:
            await conn.close()

    figures: dict[str, float] = {"lock_s": 60, "rss_mb_before": round(rss_before, 1)}
    killed_at: list[float] = []
    load = SinglesLoad(pg_app.url, seed=500).start()
    time.sleep(1.0)
    started = time.monotonic()
    asyncio.run(hold_lock(60))
    locked_answers = len(load.answered)
    time.sleep(2.0)
    load.stop()
    answered = load.answered
    rate = locked_answers / (time.monotonic() - started)
    wait_healthy(pg_app.url)
    logged = wait_ids(pg, first, len(answered), timeout_s=120)
    missing = set(answered) - set(logged)
    # What a killed replica may lose (README): its buffer bound plus one write timeout of its traffic.
    config = IngressConfig()
    bound = config.log_buffer_max_records + rate * config.log_write_timeout_s
    stats = pg_app.stats()
    record_figures(
        "hung_database",
        figures
        | {
            "answered_200": len(answered),
            "non_200_around_the_kill": load.failures,
            "rows_written": len(logged),
            "lost_by_the_sigkill": len(missing),
            "bound": round(bound),
            "answers_per_s": round(rate),
            "spooled_so_far": stats["spooled"],
            "replayed_so_far": stats["replayed"],
        },
    )
    assert len(logged) == len(set(logged)), "a decision was written twice"
    assert len(missing) <= bound, f"{len(missing)} answered decisions lost, above the bound {bound:.0f}"
    assert figures["rss_mb_during_hang"] - rss_before < 200, "ingress memory grew without bound during the hang"
    assert stats["spooled"] > 0 and stats["spool_records"] == 0


def test_full_spool_refuses_decisions_then_recovers(serve_url: str, pg_app: RunningApp, pg: PgCluster) -> None:
    """Database down and the spool at its quota (1 MiB here, a full disk in production): scoring answers 503
    with Retry-After and /health says refusing — never a 200 without a record; when the database is back
    the service recovers and every decision answered 200 is in the table exactly once."""
    quota = 1 << 20
    deploy(
        serve_url,
        pg_app.env,
        ingress={"log_buffer_max_records": 200, "log_write_timeout_s": 1.0, "spool_quota_bytes": quota},
        log_writer={"retry_interval_s": 0.5, "spool_quota_bytes": quota},
    )
    first = last_id(pg)
    answered: list[str] = []
    refused = 0
    states: set[str] = set()
    pg.stop("fast")
    try:
        with pg_app.client() as client:
            deadline = time.monotonic() + 90
            while True:  # until both ingress replicas have found they can record nothing (each on its own time)
                assert time.monotonic() < deadline, f"not every replica refused: {refused} refusals, {states}"
                response = client.post("/predict/batch", json=sample_applicants(100, seed=len(answered)))
                if response.status_code == 200:
                    answered += [r["request_id"] for r in response.json()["results"]]
                else:
                    assert response.status_code == 503 and response.headers["retry-after"], response.text
                    refused += 1
                    time.sleep(0.2)
                if refused >= 5:
                    states = {client.get("/health").json()["log"] for _ in range(10)}  # both ingress replicas
                    if "ok" not in states:
                        break
    finally:
        pg.start()
        recovered = _recover(pg_app)  # also when an assertion failed: the next test needs a serving app
    assert "refusing" in states, states
    assert recovered is not None, "the service did not recover after the database came back"
    answered += recovered
    logged = wait_ids(pg, first, len(answered), timeout_s=120)
    record_figures(
        "full_spool",
        {"quota_bytes": quota, "answered_200": len(answered), "refused_503": refused, "rows_written": len(logged)},
    )
    assert sorted(logged) == sorted(answered)
    deploy(serve_url, pg_app.env, log_writer={"retry_interval_s": 0.5})  # back to the module's settings


def _recover(app: RunningApp, timeout_s: float = 90) -> list[str] | None:
    """The request ids of the first batch answered 200 once the database is back; None if none within the time."""
    wait_healthy(app.url)
    with app.client() as client:
        deadline = time.monotonic() + timeout_s
        while (response := client.post("/predict/batch", json=sample_applicants(100, seed=9999))).status_code != 200:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)
    return [r["request_id"] for r in response.json()["results"]]


def test_outcomes_round_trip_in_postgresql(pg_app: RunningApp, pg: PgCluster) -> None:
    """Outcomes land in the ``outcomes`` table beside ``predictions``; /performance joins them back."""
    outcome_round_trip(pg_app, lambda: {r[0]: r[1] for r in sql(pg, "SELECT request_id, defaulted FROM outcomes")})


def test_window_sample_paging_and_notice_on_postgresql(pg_app: RunningApp, pg: PgCluster) -> None:
    """The drift report's bounded sample, keyset paging over a block that shares one timestamp, and a notice."""
    from prediction_log.postgres.store import PostgresStore

    before = pg_app.stats()["records_in_store"]
    with pg_app.client() as client:
        answers = client.post("/predict/batch", json=sample_applicants(1500, seed=12)).json()["results"]
        pg_app.wait_logged(before + 1500)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            page = client.get("/predictions", params=params, headers=pg_app.auth()).json()
            seen += [item["request_id"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert {a["request_id"] for a in answers} <= set(seen) and len(seen) == len(set(seen))
        denied = next(a for a in answers if a["credit_decision"] == "denied")
        notice = client.get(f"/decisions/{denied['request_id']}", headers=pg_app.auth()).json()
        assert notice["principal_reasons"] and notice["reasons_on_record"]

    async def sample() -> tuple[int, int]:
        store = await PostgresStore.connect(pg.dsn)
        try:
            block, total = await store.sample_between(None, None, 300)
            return len(block), total
        finally:
            await store.close()

    size, total = asyncio.run(sample())
    assert total >= 1500 and 0 < size <= 300
