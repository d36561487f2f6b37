"""Outcomes beside the file log: ``outcomes.jsonl`` (``prediction_log.outcomes`` holds the rule)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prediction_log.files.jsonl import JsonObjects, has_challenger, line_request_id
from prediction_log.files.store import FileStore
from prediction_log.labelled_bins import LabelledBins
from prediction_log.outcomes import (
    Labelled,
    Outcomes,
    Receipt,
    Shadowed,
    binned,
    counted,
    no_labelled,
    reconcile,
    shadowed_columns,
    shadowed_of,
)
from prediction_log.records import Block
from prediction_log.shadowed_counts import ShadowedCounts


class FileOutcomes:
    """``outcomes.jsonl`` beside the file log: one line per stored outcome, read once, then kept in memory."""

    def __init__(self, path: Path, log: FileStore) -> None:
        self.file = JsonObjects(path)
        self.log = log
        self._outcomes: dict[str, tuple[int, str]] | None = None
        self._lock = asyncio.Lock()

    def _load(self) -> dict[str, tuple[int, str]]:
        if self._outcomes is None:
            self._outcomes = {}
            for item in self.file.read():   # a torn last append was never acknowledged
                try:
                    self._outcomes[item["request_id"]] = (item["defaulted"], item["observed_at"])
                except KeyError:
                    self.file.unreadable.saw(repr(item))
        return self._outcomes

    async def record(self, post: Outcomes) -> Receipt:
        async with self._lock:
            stored = await asyncio.to_thread(self._load)
            known = await self.log.present(post.request_ids)
            existing = {i: stored[i][0] for i in post.request_ids if i in stored}
            chosen, receipt = reconcile(post, known, existing)
            if chosen:
                now = datetime.now(UTC).isoformat()
                items = [{"request_id": post.request_ids[i], "defaulted": post.defaulted[i],
                          "observed_at": post.observed_at[i].isoformat(), "recorded_at": now} for i in chosen]
                await asyncio.to_thread(self.file.append, items)
                stored.update((post.request_ids[i], (post.defaulted[i], post.observed_at[i].isoformat()))
                              for i in chosen)
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

        chunks = await self.log.fold_between(
            since, until, columns, lambda line: line_request_id(line, self.log.unreadable) in stored
        )
        if not chunks:
            return no_labelled()
        table = pa.concat_tables(chunks)
        return Labelled(
            table["ts"].to_numpy().astype("datetime64[us]"),
            np.array(table["model_version"].to_pylist(), dtype=object),
            table["probability_default"].to_numpy(),
            table["threshold"].to_numpy(),
            np.array([stored[i][0] for i in table["request_id"].to_pylist()], dtype=np.int8),
        )

    async def for_reports(self, since: datetime | None, until: datetime | None,
                          model_version: str | None) -> LabelledBins:
        """The file log keeps no counts: the window's labelled rows, counted now into PostgreSQL's bins (AUC within
        its ``auc_resolution`` of the rows')."""
        return binned(await self.labelled(since, until, model_version))

    async def shadowed_for_reports(self, since: datetime | None, until: datetime | None) -> ShadowedCounts:
        """The file log keeps no counts: the window's shadowed rows, counted now as PostgreSQL counts them."""
        return counted(await self.shadowed(since, until))

    async def shadowed(self, since: datetime | None, until: datetime | None) -> Shadowed:
        """The window's shadowed decisions (a line without a challenger score is not parsed), chunk by chunk."""
        stored = await asyncio.to_thread(self._load)
        outcomes = {i: v[0] for i, v in stored.items()}
        parts = await self.log.fold_between(
            since, until, lambda chunk: shadowed_columns(chunk, outcomes), has_challenger
        )
        return shadowed_of([row for part in parts for row in part])

    async def count(self) -> int:
        return len(await asyncio.to_thread(self._load))
