"""Synthetic traffic scenarios: training-distribution applicants, optionally drifted.

Drift is applied to the generator's base columns and the ten features are derived again,
so features computed from a drifted column (EXT_SOURCES_MEAN, EXT_SOURCES_WEIGHTED from
EXT_SOURCE_2; CREDIT_TERM from AMT_ANNUITY) move with it, as they would in real data.
With ``ramp`` the shift grows linearly from 0 to its full size over the rows (time order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from core.artifacts import load_card, resolve_model_dir
from core.features import FEATURES
from models.generator import imputation_values, model_features, raw_columns, true_probability


@dataclass(frozen=True)
class Shift:
    column: str          # a base column of models.generator.raw_columns
    add: float = 0.0
    multiply: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    shifts: tuple[Shift, ...] = field(default_factory=tuple)
    ext_effect: float = 1.0
    """How strongly the external scores drive the true risk (``models.generator.true_logit``): below 1 the
    model's main signal weakens while every input keeps its distribution (concept drift)."""
    group_shifts: tuple[Shift, ...] = field(default_factory=tuple)
    """Shifts applied to the applicants of group ``GROUPS[1]`` only (``GROUP_ATTRIBUTE``): a practice that
    lowers one group's approval rate (disparate impact)."""

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(s.column for s in self.shifts)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("control", "no drift: the training distribution"),
    Scenario("drift", "the original's scenario: EXT_SOURCE_2 -0.15, DAYS_BIRTH +3000 (younger), AMT_ANNUITY x1.2",
             (Shift("EXT_SOURCE_2", add=-0.15), Shift("DAYS_BIRTH", add=3000), Shift("AMT_ANNUITY", multiply=1.2))),
    Scenario("concept", "concept drift: inputs as in training, but the external scores' effect on default risk "
                        "weakens to 30 %: only outcomes show it", ext_effect=0.3),
    Scenario("fairness", "disparate impact: group B's external score 2 is 0.25 lower (a bureau that scores its "
                         "members worse), so its approval rate falls",
             group_shifts=(Shift("EXT_SOURCE_2", add=-0.25),)),
)}
GROUP_ATTRIBUTE = "segment"
GROUPS = ("A", "B")


def groups_of(n: int, seed: int) -> np.ndarray:
    """Each applicant's group under ``GROUP_ATTRIBUTE``: half and half, drawn from ``seed``."""
    return np.array(GROUPS, dtype=object)[np.random.default_rng(seed + 7).integers(0, len(GROUPS), n)]

# Base-column limits that keep derived features inside the API's valid ranges.
_RAW_LIMITS = {"EXT_SOURCE_2": (0.0, 1.0), "DAYS_BIRTH": (-29_999, -6_570), "AMT_ANNUITY": (1_615, 1_000_000)}


@lru_cache(maxsize=1)
def training_imputation() -> dict[str, float]:
    """The active model's training imputation values (regenerated from its card's data seed)."""
    data = load_card(resolve_model_dir(None))["data"]
    return imputation_values(data["rows"], data["seed"])


def applicants(scenario: Scenario, n: int, seed: int, ramp: bool = True) -> pd.DataFrame:
    """``n`` applicants (the ten features, API-valid) in time order."""
    raw = raw_columns(n, np.random.default_rng(seed))
    strength = np.linspace(0.0, 1.0, n) if ramp else np.ones(n)
    in_group = groups_of(n, seed) == GROUPS[1]
    for shift, rows in [(s, slice(None)) for s in scenario.shifts] + [(s, in_group) for s in scenario.group_shifts]:
        column = raw[shift.column].to_numpy()
        moved = (column * (1 + (shift.multiply - 1) * strength)) + shift.add * strength
        raw.loc[rows, shift.column] = np.clip(moved, *_RAW_LIMITS.get(shift.column, (-np.inf, np.inf)))[rows]
    raw["DAYS_BIRTH"] = raw["DAYS_BIRTH"].round()
    features = model_features(raw, fill=training_imputation())
    for f in FEATURES:
        features[f.name] = features[f.name].clip(f.low, f.high)
    return features.astype({f.name: "int64" for f in FEATURES if f.dtype == "int"})


def true_defaults(scenario: Scenario, frame: pd.DataFrame, seed: int, ramp: bool = True) -> np.ndarray:
    """Outcomes (1 = defaulted) drawn from the scenario's known probability of default for each applicant
    (with ``ramp``, the change in risk grows over the rows as the input shifts of ``applicants`` do)."""
    strength = np.linspace(0.0, 1.0, len(frame)) if ramp else np.ones(len(frame))
    p = true_probability(frame, ext_effect=1.0 + (scenario.ext_effect - 1.0) * strength)
    return (np.random.default_rng(seed + 1_000_003).random(len(frame)) < p).astype(np.int8)
