"""Group membership beside the file log: ``groups.jsonl``, read once, then kept in memory."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from prediction_log.files.jsonl import JsonObjects
from prediction_log.files.store import FileStore
from prediction_log.groups import GroupPost, GroupReceipt, Memberships, choose


class FileGroups:
    """``groups.jsonl`` beside the file log: read once, then kept in memory."""

    def __init__(self, path: Path, log: FileStore) -> None:
        self.file = JsonObjects(path)
        self.log = log
        self._lock = asyncio.Lock()
        self._memberships: Memberships | None = None

    def _load(self) -> Memberships:
        if self._memberships is None:
            self._memberships = {}
            for item in self.file.read():
                try:
                    self._memberships.setdefault(item["attribute"], {})[item["request_id"]] = item["group"]
                except (KeyError, TypeError):
                    self.file.unreadable.saw(repr(item))
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
                await asyncio.to_thread(self.file.append, items)
                for x in items:
                    stored.setdefault(x["attribute"], {})[x["request_id"]] = x["group"]
        return receipt

    async def of(self, request_ids: list[str]) -> Memberships:
        stored = await asyncio.to_thread(self._load)
        wanted = set(request_ids)
        return {a: {i: g for i, g in m.items() if i in wanted} for a, m in stored.items()}

    async def counted(self, since: datetime, until: datetime) -> None:
        """The file log keeps no counts: the window's records are counted when read."""
        return None
