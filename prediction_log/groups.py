"""Group membership of decided applicants, for disparate-impact monitoring: kept apart from the decisions.

A lender posts, for decided request_ids, the group of each applicant under an attribute of its choice
(self-reported or a proxy: ``{"request_id", "attribute", "group"}``). The scorer never sees it; only the
fairness report joins it to the decisions. One group per decision and attribute: a re-post is a duplicate
and changes nothing, ids the log does not hold are reported and not stored. PostgreSQL table
``group_membership`` beside ``predictions``, or ``DATA_DIR/groups.jsonl`` beside the file log.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from prediction_log.fairness_counts import FairnessCounts, Memberships

MAX_GROUPS = 10_000
"""Per post."""


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



class GroupStore(Protocol):
    """Group membership beside the log (``postgres.groups`` or ``files.groups``), by the rule of ``choose``."""

    async def record(self, post: GroupPost) -> GroupReceipt: ...

    async def of(self, request_ids: list[str]) -> Memberships: ...

    async def counted(self, since: datetime, until: datetime) -> FairnessCounts | None:
        """The decisions of [since, until) counted per group (``fairness_counts``) where the store keeps the counts
        (PostgreSQL); None where it does not (the file log: the caller counts the records)."""
