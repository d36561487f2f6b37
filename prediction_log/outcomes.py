"""Loan outcomes (did the borrower default?) reported months after the decision, keyed by its request_id.

One outcome per decision, ever: re-sending the same outcome changes nothing (a duplicate), a different
one for a decision that has an outcome is a conflict and the whole post is refused (nothing stored),
an outcome for a request_id the log does not hold is reported back, not stored. ``reconcile`` is that
rule, once; the two stores (``outcomes`` table in PostgreSQL, ``outcomes.jsonl`` beside the file log)
only say which ids the log knows and which outcomes exist.

Labelled decisions (the log joined with outcomes) leave the stores as ``Labelled`` columns, for the
realized-performance figures; for reports over long windows (``for_reports``) PostgreSQL answers with the
counts it keeps as outcomes arrive (``labelled_bins``, ``pg_labelled``) instead of the rows.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from core.decision import is_denied
from prediction_log.appender import LineAppender
from prediction_log.files.lines import complete_lines
from prediction_log.files.store import FileStore, line_request_id
from prediction_log.labelled_bins import LabelledBins, of_rows
from prediction_log.postgres import labelled as pg_labelled
from prediction_log.postgres import shadowed as pg_shadowed
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.shadowed import ShadowedCounts
from prediction_log.postgres.store import TABLE as LOG_TABLE
from prediction_log.postgres.store import PostgresStore
from prediction_log.records import Block

logger = logging.getLogger(__name__)

TABLE = "outcomes"
SQL_TYPES = {"request_id": "text PRIMARY KEY", "defaulted": "smallint NOT NULL CHECK (defaulted IN (0, 1))",
             "observed_at": "timestamptz NOT NULL", "recorded_at": "timestamptz NOT NULL DEFAULT now()"}
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('outcomes_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())})",
]
READ_TIMEOUT_S = 30.0
"""Reads for reports join the whole window: longer than the log's write timeout (a hung write is spooled;
a slow report is only slow)."""
MAX_OUTCOMES = 10_000
"""Per post: an outcome file of a month's defaults is sent in chunks of this size."""


@dataclass(frozen=True)
class Outcomes:
    """A post of outcomes, as parallel columns."""

    request_ids: list[str]
    defaulted: list[int]
    observed_at: list[datetime]


@dataclass
class Receipt:
    """What a post did: ``conflicting_request_ids`` non-empty means it stored nothing (409)."""

    accepted: int = 0
    unknown_request_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    conflicting_request_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Labelled:
    """Decisions that have an outcome: one entry per decision, the log's columns beside the outcome."""

    ts: np.ndarray             # datetime64[us], UTC
    model_version: np.ndarray  # str objects
    probability: np.ndarray    # float64
    threshold: np.ndarray      # float64
    defaulted: np.ndarray      # int8

    def __len__(self) -> int:
        return len(self.defaulted)

    @property
    def decisions(self) -> int:
        """How many labelled decisions (as ``LabelledBins.decisions``)."""
        return len(self.defaulted)


@dataclass(frozen=True)
class Shadowed:
    """Decisions scored by a shadow challenger too: both models' scores of the same loans, and the outcome
    where one is known (``defaulted`` -1 = not yet)."""

    model_version: np.ndarray          # str objects: the champion that answered
    probability: np.ndarray            # float64
    denied: np.ndarray                 # bool
    challenger_version: np.ndarray     # str objects
    challenger_probability: np.ndarray
    challenger_denied: np.ndarray
    defaulted: np.ndarray              # int8, -1 = no outcome yet

    def __len__(self) -> int:
        return len(self.probability)


def _shadowed(rows: list[tuple]) -> Shadowed:
    columns = list(zip(*rows)) if rows else [[]] * 7
    return Shadowed(np.array(columns[0], dtype=object), np.array(columns[1], dtype=np.float64),
                    np.array(columns[2], dtype=bool), np.array(columns[3], dtype=object),
                    np.array(columns[4], dtype=np.float64), np.array(columns[5], dtype=bool),
                    np.array([-1 if d is None else d for d in columns[6]], dtype=np.int8))


def reconcile(post: Outcomes, known: Collection[str], existing: Mapping[str, int]) -> tuple[list[int], Receipt]:
    """Which entries of ``post`` to store (indices), and the receipt. ``known``: the posted ids the log holds;
    ``existing``: outcomes already stored for posted ids. A repeated id within the post counts like a re-send."""
    receipt, seen, store = Receipt(), dict(existing), []
    for i, (request_id, defaulted) in enumerate(zip(post.request_ids, post.defaulted)):
        if request_id not in known:
            receipt.unknown_request_ids.append(request_id)
        elif request_id not in seen:
            seen[request_id] = defaulted
            store.append(i)
        elif seen[request_id] == defaulted:
            receipt.duplicates += 1
        elif request_id not in receipt.conflicting_request_ids:
            receipt.conflicting_request_ids.append(request_id)
    if receipt.conflicting_request_ids:
        return [], receipt
    receipt.accepted = len(store)
    return store, receipt


def _whole_days(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The first whole UTC day at or after ``since`` and the day ``until`` falls in (open bounds stay open)."""
    first = last = None
    if since is not None:
        day = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        first = day if day == since else day + timedelta(days=1)
    if until is not None:
        last = until.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return first, last


def _binned(labelled: Labelled) -> LabelledBins:
    return of_rows(labelled.ts, labelled.model_version, labelled.probability,
                   is_denied(labelled.probability, labelled.threshold), labelled.defaulted)


def _no_labelled() -> Labelled:
    return Labelled(np.array([], dtype="datetime64[us]"), np.array([], dtype=object), np.array([], dtype=np.float64),
                    np.array([], dtype=np.float64), np.array([], dtype=np.int8))


class PostgresOutcomes:
    """The ``outcomes`` table, beside ``predictions`` in the log's database."""

    def __init__(self, log: PostgresStore) -> None:
        self.log = log
        """Posts on the log's write pool, reports on its read pool."""
        self._schema_ready = False
        self._posting = asyncio.Lock()
        """Posts queue here, before they take a write connection: one at a time takes one, and the others never
        hold the connections decisions are written on while they wait for the advisory lock."""

    async def _ensure_schema(self, conn: asyncpg.Connection) -> None:
        if not self._schema_ready:
            await apply_schema(conn, SCHEMA_SQL, TABLE, tuple(SQL_TYPES))
            await pg_labelled.ensure_schema(conn, TABLE, LOG_TABLE)
            self._schema_ready = True

    async def ensure_schema(self) -> None:
        """Create the table now (``prediction_log.postgres.schema`` as the owner) rather than at the first use."""
        async with self.log.writing() as conn:
            await self._ensure_schema(conn)

    async def record(self, post: Outcomes) -> Receipt:
        """One transaction, serialised with other posts (a conflict cannot slip between check and insert): in this
        process by a lock taken before the connection, across processes by an advisory lock."""
        async with self._posting, self.log.writing() as conn:
            await self._ensure_schema(conn)
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('outcomes_post'))")
                ids = list(dict.fromkeys(post.request_ids))
                known = {r[0] for r in await conn.fetch(
                    f"SELECT request_id FROM {LOG_TABLE} WHERE request_id = ANY($1::text[])", ids)}
                existing = {r[0]: r[1] for r in await conn.fetch(
                    f"SELECT request_id, defaulted FROM {TABLE} WHERE request_id = ANY($1::text[])", ids)}
                chosen, receipt = reconcile(post, known, existing)
                if chosen:
                    await conn.execute(
                        f"INSERT INTO {TABLE} (request_id, defaulted, observed_at) "
                        "SELECT * FROM unnest($1::text[], $2::smallint[], $3::timestamptz[]) "
                        "ON CONFLICT (request_id) DO NOTHING",
                        [post.request_ids[i] for i in chosen], [post.defaulted[i] for i in chosen],
                        [post.observed_at[i] for i in chosen])
        return receipt

    async def defaulted_of(self, request_ids: list[str]) -> dict[str, int]:
        """The outcome of each of ``request_ids`` that has one."""
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            rows = await conn.fetch(f"SELECT request_id, defaulted FROM {TABLE} WHERE request_id = ANY($1::text[])",
                                    request_ids, timeout=READ_TIMEOUT_S)
        return {r[0]: int(r[1]) for r in rows}

    async def labelled(self, since: datetime | None, until: datetime | None, model_version: str | None) -> Labelled:
        """The join, filtered on the decision's time and model (a hash join: outcomes are the smaller side),
        streamed out as CSV and parsed by Arrow into columns (no Python object per row: 200k rows in ~0.1 s)."""
        query = (f"SELECT (extract(epoch FROM p.ts) * 1000000)::bigint AS ts_us, p.model_version, "
                 f"p.probability_default, p.threshold, o.defaulted FROM {TABLE} o JOIN {LOG_TABLE} p USING (request_id) "
                 "WHERE ($1::timestamptz IS NULL OR p.ts >= $1) AND ($2::timestamptz IS NULL OR p.ts < $2) "
                 "AND ($3::text IS NULL OR p.model_version = $3)")
        out = io.BytesIO()
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            await conn.copy_from_query(query, since, until, model_version, output=out, format="csv", header=True,
                                       timeout=READ_TIMEOUT_S)
        table = pa_csv.read_csv(io.BytesIO(out.getvalue()), convert_options=pa_csv.ConvertOptions(column_types={
            "ts_us": pa.int64(), "model_version": pa.string(), "probability_default": pa.float64(),
            "threshold": pa.float64(), "defaulted": pa.int8()}))
        return Labelled(table.column("ts_us").to_numpy().astype("datetime64[us]"),
                        np.array(table.column("model_version").to_pylist(), dtype=object),
                        table.column("probability_default").to_numpy(), table.column("threshold").to_numpy(),
                        table.column("defaulted").to_numpy())

    async def for_reports(self, since: datetime | None, until: datetime | None,
                          model_version: str | None) -> LabelledBins:
        """The window's labelled decisions as counts: whole days from ``labelled_days`` (cost grows with days, not
        outcomes), the partial days at the window's edges from their rows."""
        first, last = _whole_days(since, until)
        if first is not None and last is not None and first >= last:
            return _binned(await self.labelled(since, until, model_version))
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            parts = [await pg_labelled.bins_between(conn, first, last, model_version, READ_TIMEOUT_S)]
        if since is not None and since != first:
            parts.append(_binned(await self.labelled(since, first, model_version)))
        if until is not None and until != last:
            parts.append(_binned(await self.labelled(last, until, model_version)))
        return LabelledBins.concat(parts)

    async def shadowed_for_reports(self, since: datetime | None, until: datetime | None) -> ShadowedCounts:
        """The window's shadowed decisions counted where they are (``pg_shadowed``), not brought here as rows."""
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            return await pg_shadowed.shadowed_counts(conn, LOG_TABLE, TABLE, since, until, READ_TIMEOUT_S)

    async def shadowed(self, since: datetime | None, until: datetime | None) -> Shadowed:
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            rows = await conn.fetch(
                "SELECT p.model_version, p.probability_default, p.prediction = 1, p.challenger_version, "
                "p.challenger_probability, p.challenger_decision = 'denied', o.defaulted "
                f"FROM {LOG_TABLE} p LEFT JOIN {TABLE} o USING (request_id) "
                "WHERE p.challenger_probability IS NOT NULL AND ($1::timestamptz IS NULL OR p.ts >= $1) "
                "AND ($2::timestamptz IS NULL OR p.ts < $2)", since, until, timeout=READ_TIMEOUT_S)
        return _shadowed([tuple(r) for r in rows])

    async def count(self) -> int:
        async with self.log.reading() as conn:
            await self._ensure_schema(conn)
            return await conn.fetchval(f"SELECT count(*) FROM {TABLE}")


class FileOutcomes:
    """``outcomes.jsonl`` beside the file log: one line per stored outcome, read once, then kept in memory."""

    def __init__(self, path: Path, log: FileStore) -> None:
        self.path = path
        self.log = log
        self._outcomes: dict[str, tuple[int, str]] | None = None
        self._lock = asyncio.Lock()
        self._appender = LineAppender(path)

    def _load(self) -> dict[str, tuple[int, str]]:
        if self._outcomes is None:
            self._outcomes = {}
            for line in complete_lines(self.path):   # a torn last append was never acknowledged
                try:
                    item = orjson.loads(line)
                    self._outcomes[item["request_id"]] = (item["defaulted"], item["observed_at"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    logger.warning("%s: skipping an unreadable line: %.80r", self.path, line)
        return self._outcomes

    def _append(self, lines: bytes) -> None:
        self._appender.append(lines)

    async def record(self, post: Outcomes) -> Receipt:
        async with self._lock:
            stored = await asyncio.to_thread(self._load)
            known = await self.log.present(post.request_ids)
            existing = {i: stored[i][0] for i in post.request_ids if i in stored}
            chosen, receipt = reconcile(post, known, existing)
            if chosen:
                now = datetime.now(timezone.utc).isoformat()
                items = [{"request_id": post.request_ids[i], "defaulted": post.defaulted[i],
                          "observed_at": post.observed_at[i].isoformat(), "recorded_at": now} for i in chosen]
                await asyncio.to_thread(self._append, b"".join(orjson.dumps(item) + b"\n" for item in items))
                stored.update((item["request_id"], (item["defaulted"], item["observed_at"])) for item in items)
        return receipt

    async def defaulted_of(self, request_ids: list[str]) -> dict[str, int]:
        stored = await asyncio.to_thread(self._load)
        return {i: stored[i][0] for i in request_ids if i in stored}

    async def labelled(self, since: datetime | None, until: datetime | None, model_version: str | None) -> Labelled:
        """The window's decisions that have an outcome: only their lines are parsed, chunk by chunk, and only
        the columns the figures need are kept (memory ~50 bytes a labelled decision, not the window's records)."""
        stored = await asyncio.to_thread(self._load)

        def columns(chunk: Block) -> pa.Table:
            table = pa.Table.from_batches([chunk]).select(["ts", "model_version", "probability_default", "threshold",
                                                           "request_id"])
            return table if model_version is None else table.filter(pc.equal(table["model_version"], model_version))

        chunks = await self.log.fold_between(since, until, columns, lambda line: line_request_id(line) in stored)
        if not chunks:
            return _no_labelled()
        table = pa.concat_tables(chunks)
        return Labelled(table["ts"].to_numpy().astype("datetime64[us]"),
                        np.array(table["model_version"].to_pylist(), dtype=object),
                        table["probability_default"].to_numpy(), table["threshold"].to_numpy(),
                        np.array([stored[i][0] for i in table["request_id"].to_pylist()], dtype=np.int8))

    async def for_reports(self, since: datetime | None, until: datetime | None, model_version: str | None) -> Labelled:
        """The file log keeps no counts: its reports read the labelled rows (exact)."""
        return await self.labelled(since, until, model_version)

    async def shadowed_for_reports(self, since: datetime | None, until: datetime | None) -> Shadowed:
        """The file log keeps no counts: its comparison reads the shadowed rows."""
        return await self.shadowed(since, until)

    async def shadowed(self, since: datetime | None, until: datetime | None) -> Shadowed:
        """The window's shadowed decisions (a line without a challenger score is not parsed), chunk by chunk."""
        stored = await asyncio.to_thread(self._load)
        outcomes = {i: v[0] for i, v in stored.items()}
        parts = await self.log.fold_between(
            since, until, lambda chunk: shadowed_columns(chunk, outcomes),
            lambda line: _NO_CHALLENGER not in line)
        return _shadowed([row for part in parts for row in part])

    async def count(self) -> int:
        return len(await asyncio.to_thread(self._load))


OutcomeStore = PostgresOutcomes | FileOutcomes


_NO_CHALLENGER = '"challenger_probability":null'
"""How a file-log line without a challenger score says so (``records.to_json_lines``)."""


def shadowed_rows(block: Block, outcomes: Mapping[str, int]) -> Shadowed:
    """The shadowed decisions of a block of records, with their outcomes (file log, in-process backend)."""
    return _shadowed(shadowed_columns(block, outcomes))


def shadowed_columns(block: Block, outcomes: Mapping[str, int]) -> list[tuple[Any, ...]]:
    """The rows ``_shadowed`` takes, of the block's shadowed decisions."""
    columns = {name: block.column(name).to_pylist() for name in (
        "request_id", "model_version", "probability_default", "prediction", "challenger_version",
        "challenger_probability", "challenger_decision")}
    return [(columns["model_version"][i], columns["probability_default"][i], columns["prediction"][i] == 1,
             columns["challenger_version"][i], columns["challenger_probability"][i],
             columns["challenger_decision"][i] == "denied", outcomes.get(columns["request_id"][i]))
            for i in range(len(block)) if columns["challenger_probability"][i] is not None]
