"""Decisions counted per group, for fair-lending figures at the log's scale: per (attribute, group, decision, the
shadow challenger's version and decision, outcome, probability bin) how many decisions and the sum of their
probabilities.

The age band (from ``DAYS_BIRTH``, a feature) is counted for every decision; a posted attribute
(``prediction_log.groups``) for the decisions it was posted for. ``defaulted`` is -1 until the outcome arrives,
``challenger_denied`` -1 and ``challenger_version`` '' for a decision no challenger shadowed. PostgreSQL keeps
these counts per day as decisions, group posts and outcomes are stored (``postgres.fairness_days``); ``of_block``
makes the same counts from records (the file log, which keeps none). Figures:
``models.fairness.fairness_from_counts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from core.features import AGE_ATTRIBUTE, AGE_FEATURE, age_bands
from prediction_log.labelled_bins import bin_of
from prediction_log.records import Block

Memberships = dict[str, dict[str, str]]
"""Posted group membership (``prediction_log.groups``): attribute → request_id → group."""
COLUMNS = ("request_id", AGE_FEATURE, "prediction", "probability_default", "challenger_version",
           "challenger_decision")
"""The log columns ``of_block`` reads."""


@dataclass(frozen=True)
class FairnessCounts:
    attribute: np.ndarray          # str objects
    group: np.ndarray              # str objects
    denied: np.ndarray             # bool
    challenger_version: np.ndarray  # str objects: '' not shadowed
    challenger_denied: np.ndarray  # int8: 1, 0, or -1 not shadowed
    defaulted: np.ndarray          # int8: 1, 0, or -1 no outcome yet
    probability_bin: np.ndarray    # int16 (``labelled_bins.bin_of``)
    count: np.ndarray              # int64
    probability_sum: np.ndarray    # float64

    def __len__(self) -> int:
        return len(self.count)

    def subset(self, mask: np.ndarray) -> FairnessCounts:
        return FairnessCounts(*(getattr(self, f.name)[mask] for f in fields(self)))

    @staticmethod
    def concat(parts: list[FairnessCounts]) -> FairnessCounts:
        return FairnessCounts(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FairnessCounts)))


def empty() -> FairnessCounts:
    return FairnessCounts(np.array([], dtype=object), np.array([], dtype=object), np.array([], bool),
                          np.array([], dtype=object), np.array([], np.int8), np.array([], np.int8),
                          np.array([], np.int16), np.array([], np.int64), np.array([], np.float64))


def of_rows(attribute: np.ndarray, group: np.ndarray, denied: np.ndarray, challenger_version: np.ndarray,
            challenger_denied: np.ndarray, defaulted: np.ndarray, probability: np.ndarray) -> FairnessCounts:
    """The counts of exact decisions, one entry per distinct key."""
    if not len(probability):
        return empty()
    text = np.char.add(np.char.add(np.char.add(np.char.add(attribute.astype(str), "\t"), group.astype(str)), "\t"),
                       challenger_version.astype(str))
    labels, label_codes = np.unique(text, return_inverse=True)
    bins = bin_of(probability).astype(np.int64)
    key = (((label_codes.astype(np.int64) * 2 + denied.astype(np.int64)) * 3 + challenger_denied + 1) * 3
           + defaulted + 1) * 1024 + bins
    keys, index = np.unique(key, return_inverse=True)
    rest, bin_k = np.divmod(keys, 1024)
    rest, outcome_k = np.divmod(rest, 3)
    rest, challenger_k = np.divmod(rest, 3)
    label_k, denied_k = np.divmod(rest, 2)
    attribute_k, group_k, version_k = zip(*(str(s).split("\t", 2) for s in labels[label_k])) if len(keys) \
        else ((), (), ())
    return FairnessCounts(np.array(attribute_k, dtype=object), np.array(group_k, dtype=object),
                          denied_k.astype(bool), np.array(version_k, dtype=object),
                          (challenger_k - 1).astype(np.int8), (outcome_k - 1).astype(np.int8),
                          bin_k.astype(np.int16), np.bincount(index).astype(np.int64),
                          np.bincount(index, probability))


def of_block(block: Block, memberships: Memberships, defaulted: Mapping[str, int]) -> FairnessCounts:
    """The counts of some records (``COLUMNS``): their age bands, and each posted attribute's groups."""
    ids = block.column("request_id").to_pylist()
    denied = block.column("prediction").to_numpy(zero_copy_only=False).astype(bool)
    probability = block.column("probability_default").to_numpy(zero_copy_only=False)
    challenger = np.array([-1 if d is None else int(d == "denied")
                           for d in block.column("challenger_decision").to_pylist()], dtype=np.int64)
    version = np.array([v or "" for v in block.column("challenger_version").to_pylist()], dtype=object)
    outcome = np.array([defaulted.get(i, -1) for i in ids], dtype=np.int64)
    bands = age_bands(block.column(AGE_FEATURE).to_numpy(zero_copy_only=False))
    parts = [of_rows(np.full(len(ids), AGE_ATTRIBUTE, dtype=object), bands, denied, version, challenger, outcome,
                     probability)]
    for attribute, groups in sorted(memberships.items()):
        rows = np.array([i for i, request_id in enumerate(ids) if request_id in groups], dtype=np.int64)
        if len(rows):
            group = np.array([groups[ids[i]] for i in rows], dtype=object)
            parts.append(of_rows(np.full(len(rows), attribute, dtype=object), group, denied[rows], version[rows],
                                 challenger[rows], outcome[rows], probability[rows]))
    return FairnessCounts.concat(parts)
