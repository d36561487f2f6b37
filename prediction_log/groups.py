"""Group membership of decided applicants, for disparate-impact monitoring: kept apart from the decisions.

A lender posts, for decided request_ids, the group of each applicant under an attribute of its choice
(self-reported or a proxy: ``{"request_id", "attribute", "group"}``). The scorer never sees it; only the
fairness report joins it to the decisions. One group per decision and attribute: a re-post is a duplicate
and changes nothing, ids the log does not hold are reported and not stored. PostgreSQL table
``group_membership`` beside ``predictions``, or ``DATA_DIR/groups.jsonl`` beside the file log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from prediction_log.appender import LineAppender
from prediction_log.files.lines import complete_lines
from prediction_log.files.store import FileStore
from prediction_log.postgres.ddl import apply_schema
from prediction_log.postgres.store import TABLE as LOG_TABLE
from prediction_log.postgres.store import PostgresStore

TABLE = "group_membership"
SQL_TYPES = {"request_id": "text NOT NULL", "attribute": "text NOT NULL", "group_name": "text NOT NULL",
             "recorded_at": "timestamptz NOT NULL DEFAULT now()"}
SCHEMA_SQL = [
    "SELECT pg_advisory_xact_lock(hashtext('group_membership_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{c} {t}' for c, t in SQL_TYPES.items())}, "
    "PRIMARY KEY (request_id, attribute))",
]
MAX_GROUPS = 10_000
"""Per post."""
Memberships = dict[str, dict[str, str]]
"""attribute → request_id → group."""


@dataclass(frozen=True)
class GroupPost:
    request_ids: list[str]
    attributes: list[str]
    groups: list[str]


@dataclass
class GroupReceipt:
    accepted: int = 0
    unknown_request_ids: list[str] = field(default_factory=list)
    duplicates: int = 0


def choose(post: GroupPost, known: Collection[str], existing: Collection[tuple[str, str]]) -> tuple[list[int],
                                                                                                  GroupReceipt]:
    """Which entries to store (indices) and the receipt; ``existing``: (request_id, attribute) already stored."""
    receipt, seen, chosen = GroupReceipt(), set(existing), []
    for i, (request_id, attribute) in enumerate(zip(post.request_ids, post.attributes)):
        if request_id not in known:
            receipt.unknown_request_ids.append(request_id)
        elif (request_id, attribute) in seen:
            receipt.duplicates += 1
        else:
            seen.add((request_id, attribute))
            chosen.append(i)
    receipt.accepted = len(chosen)
    return chosen, receipt


class PostgresGroups:
    def __init__(self, log: PostgresStore) -> None:
        self.log = log
        self._schema_ready = False

    async def ensure_schema(self) -> None:
        async with self.log.writing() as conn:
            await apply_schema(conn, SCHEMA_SQL, TABLE, tuple(SQL_TYPES))
        self._schema_ready = True

    async def record(self, post: GroupPost) -> GroupReceipt:
        if not self._schema_ready:
            await self.ensure_schema()
        async with self.log.writing() as conn, conn.transaction():
            ids = list(dict.fromkeys(post.request_ids))
            known = {r[0] for r in await conn.fetch(
                f"SELECT request_id FROM {LOG_TABLE} WHERE request_id = ANY($1::text[])", ids)}
            existing = {(r[0], r[1]) for r in await conn.fetch(
                f"SELECT request_id, attribute FROM {TABLE} WHERE request_id = ANY($1::text[])", ids)}
            chosen, receipt = choose(post, known, existing)
            if chosen:
                await conn.execute(
                    f"INSERT INTO {TABLE} (request_id, attribute, group_name) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
                    [post.request_ids[i] for i in chosen], [post.attributes[i] for i in chosen],
                    [post.groups[i] for i in chosen])
        return receipt

    async def of(self, request_ids: list[str]) -> Memberships:
        if not self._schema_ready:
            await self.ensure_schema()
        out: Memberships = {}
        async with self.log.reading() as conn:
            for r in await conn.fetch(f"SELECT request_id, attribute, group_name FROM {TABLE} "
                                      "WHERE request_id = ANY($1::text[])", request_ids,
                                      timeout=self.log.read_timeout_s):
                out.setdefault(r[1], {})[r[0]] = r[2]
        return out


class FileGroups:
    """``groups.jsonl`` beside the file log: read once, then kept in memory."""

    def __init__(self, path: Path, log: FileStore) -> None:
        self.path = path
        self.log = log
        self._lock = asyncio.Lock()
        self._appender = LineAppender(path)
        self._memberships: Memberships | None = None

    def _load(self) -> Memberships:
        if self._memberships is None:
            self._memberships = {}
            for line in complete_lines(self.path):
                try:
                    item = orjson.loads(line)
                    self._memberships.setdefault(item["attribute"], {})[item["request_id"]] = item["group"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
        return self._memberships

    async def record(self, post: GroupPost) -> GroupReceipt:
        async with self._lock:
            stored = await asyncio.to_thread(self._load)
            known = await self.log.present(post.request_ids)
            existing = {(i, a) for i, a in zip(post.request_ids, post.attributes) if i in stored.get(a, {})}
            chosen, receipt = choose(post, known, existing)
            if chosen:
                items = [{"request_id": post.request_ids[i], "attribute": post.attributes[i],
                          "group": post.groups[i]} for i in chosen]
                await asyncio.to_thread(self._appender.append, b"".join(orjson.dumps(x) + b"\n" for x in items))
                for x in items:
                    stored.setdefault(x["attribute"], {})[x["request_id"]] = x["group"]
        return receipt

    async def of(self, request_ids: list[str]) -> Memberships:
        stored = await asyncio.to_thread(self._load)
        wanted = set(request_ids)
        return {a: {i: g for i, g in m.items() if i in wanted} for a, m in stored.items()}


GroupStore = FileGroups | PostgresGroups
