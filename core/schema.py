"""A model's input schema as its card declares it: the contract between a lender's table, training and serving.

The card's ``schema`` block lists each feature (name, type, range or levels, missing-value policy, monotone
direction, the adverse-action reason text), the age rule (which field holds age and in what unit) and the
protected attributes kept for fair-lending monitoring and never scored. ``parse`` reads the block strictly: every
problem is a ``SchemaError`` naming the field (``schema.features[3].levels``), so a card with a typo is refused at
load, not served. ``digest`` identifies a schema: a model may replace another in place only under the same digest.
The default model's schema is ``core.features`` written in this form (``DEFAULT_SCHEMA``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from core.features import AGE_FEATURE, ELDERLY_AGE_YEARS, FEATURES, Feature, age_years

Kind = Literal["number", "integer", "category"]
KINDS: tuple[Kind, ...] = ("number", "integer", "category")
MissingPolicy = Literal["refuse", "model"]
"""``refuse``: the field is required (a 422 without it); ``model``: a missing value goes to the model as missing
(LightGBM's learned default branch)."""
UnknownPolicy = Literal["refuse", "missing"]
"""What a category level outside the declared ones gets: a 422 naming the allowed levels, or treated as missing."""
AgeUnit = Literal["years", "days_before_application"]
AGE_UNITS: tuple[AgeUnit, ...] = ("years", "days_before_application")
MAX_LEVELS = 256
NAME_PATTERN = "a letter, then letters, digits or _ . - (at most 64)"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")


class SchemaError(ValueError):
    """A schema declaration that must not serve; the message starts with the field's path on the card."""


@dataclass(frozen=True)
class FeatureSpec:
    """One model input as declared on the card."""

    name: str
    kind: Kind
    reason: str
    """The adverse-action statement cited when this feature raises the risk of a denied applicant."""
    description: str = ""
    unit: str = ""
    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True
    levels: tuple[str, ...] = ()
    """A category's levels; the model sees each as its index in this order."""
    missing: MissingPolicy = "refuse"
    unknown: UnknownPolicy = "refuse"
    direction: Literal[-1, 0, 1] = 0
    """+1: risk may only rise with the value, −1: only fall, 0: no expectation (categories: always 0)."""
    example: float | str | None = None

    @property
    def range_text(self) -> str:
        """The range in interval notation, e.g. ``[0, 1]`` or ``(0, 1000000]``; a category's levels."""
        if self.kind == "category":
            return "one of " + ", ".join(self.levels)
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def encode(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """The column as the model sees it (float64; a category's level index; NaN for missing)."""
        if self.kind != "category":
            return np.asarray(values, dtype=np.float64)
        index = {level: float(i) for i, level in enumerate(self.levels)}
        return np.array([index.get(level_text(v), math.nan) for v in values], dtype=np.float64)

    def to_card(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.kind == "category":
            out |= {"levels": list(self.levels), "unknown": self.unknown}
        else:
            out |= {"range": [_number_out(self.low), _number_out(self.high)],
                    "range_inclusive": [self.low_inclusive, self.high_inclusive]}
        out |= {"missing": self.missing, "direction": self.direction, "reason": self.reason}
        if self.description:
            out["description"] = self.description
        if self.unit:
            out["unit"] = self.unit
        if self.example is not None:
            out["example"] = self.example
        return out


@dataclass(frozen=True)
class AgeRule:
    """Which feature holds the applicant's age and how years are computed from it (Regulation B's age rule, age
    bands for fair-lending figures)."""

    field: str
    unit: AgeUnit

    def years(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) if self.unit == "years" else age_years(values)

    def is_elderly(self, values: np.ndarray) -> np.ndarray:
        """Aged ``ELDERLY_AGE_YEARS`` or older: the age field is never a reason for them (Regulation B)."""
        return self.years(values) >= ELDERLY_AGE_YEARS


@dataclass(frozen=True)
class ProtectedAttribute:
    """A field the lender records for disparate-impact monitoring: validated, logged, never given to the model."""

    name: str
    levels: tuple[str, ...]

    def to_card(self) -> dict[str, Any]:
        return {"name": self.name, "levels": list(self.levels)}


@dataclass(frozen=True)
class ModelSchema:
    features: tuple[FeatureSpec, ...]
    age: AgeRule | None = None
    protected: tuple[ProtectedAttribute, ...] = ()
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))

    def __len__(self) -> int:
        return len(self.features)

    @property
    def categorical(self) -> tuple[int, ...]:
        """Column indices of the category features (LightGBM's ``categorical_feature``)."""
        return tuple(j for j, f in enumerate(self.features) if f.kind == "category")

    @property
    def age_index(self) -> int | None:
        return None if self.age is None else self.names.index(self.age.field)

    def encode(self, frame: Any) -> np.ndarray:
        """An ``(n, len(self))`` float64 matrix from a table with (at least) the feature columns."""
        if not self.features:
            return np.empty((len(frame), 0))
        return np.column_stack([f.encode(frame[f.name].to_numpy()) for f in self.features])

    def to_card(self) -> dict[str, Any]:
        return {"features": [f.to_card() for f in self.features],
                "age": None if self.age is None else {"field": self.age.field, "unit": self.age.unit},
                "protected": [p.to_card() for p in self.protected]}

    def contract(self) -> dict[str, Any]:
        """What a request must hold and what the model reads from it: names, order, types, ranges, levels and their
        policies, the age rule, the protected attributes. Not the texts (reasons, descriptions: a reviewer may
        reword them) nor the directions (the monotonicity sweep on the card answers for those)."""
        texts = ("reason", "description", "unit", "example", "direction")
        card = self.to_card()
        return card | {"features": [{k: v for k, v in f.items() if k not in texts} for f in card["features"]]}

    @property
    def digest(self) -> str:
        """SHA-256 of ``contract`` in canonical JSON: a model may replace another in place only under the same one."""
        text = json.dumps(self.contract(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _number_out(value: float) -> float | None:
    """A bound as the card writes it (always a float, so the same bound always has the same digest)."""
    return None if math.isinf(value) else float(value)


def level_text(value: Any) -> str:
    """A level as the card spells it: integers without a fraction (a table's 2 and a request's 2.0 are level '2')."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _valid_name(name: Any) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def _keys(where: str, block: Any, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(block, Mapping):
        raise SchemaError(f"{where}: expected an object, got {type(block).__name__}")
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise SchemaError(f"{where}.{unknown[0]}: not a field of the declaration "
                          f"(allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(block))
    if missing:
        raise SchemaError(f"{where}.{missing[0]}: required")
    return block


def _text(where: str, value: Any, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise SchemaError(f"{where}: " + ("required, a non-empty text" if required else "must be a text"))
    return value


def _choice(where: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed or isinstance(value, bool):
        raise SchemaError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def _levels(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SchemaError(f"{where}: a category needs its levels (a non-empty list)")
    if len(value) > MAX_LEVELS:
        raise SchemaError(f"{where}: {len(value)} levels, at most {MAX_LEVELS}")
    levels = tuple(level_text(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value)
    for i, level in enumerate(levels):
        if not isinstance(level, str) or not level or len(level) > 64:
            raise SchemaError(f"{where}[{i}]: a level is a text of 1 to 64 characters")
    if len(set(levels)) != len(levels):
        raise SchemaError(f"{where}: a level is listed twice")
    return levels


def _range(where: str, block: Mapping[str, Any]) -> tuple[float, float, bool, bool]:
    bounds = block.get("range", [None, None])
    inclusive = block.get("range_inclusive", [True, True])
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SchemaError(f"{where}.range: [low, high] (null for unbounded)")
    if not isinstance(inclusive, list) or len(inclusive) != 2 or not all(isinstance(b, bool) for b in inclusive):
        raise SchemaError(f"{where}.range_inclusive: [true|false, true|false]")
    low, high = (-math.inf if bounds[0] is None else bounds[0]), (math.inf if bounds[1] is None else bounds[1])
    for side, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise SchemaError(f"{where}.range: {side} {v!r} is not a number")
    if not low < high:
        raise SchemaError(f"{where}.range: low {low!r} is not below high {high!r}")
    return float(low), float(high), inclusive[0], inclusive[1]


_FEATURE_KEYS = {"name", "type", "range", "range_inclusive", "levels", "missing", "unknown", "direction", "reason",
                 "description", "unit", "example"}


def parse_feature(where: str, block: Any) -> FeatureSpec:
    """One feature declaration, checked (``SchemaError`` naming the field under ``where``)."""
    block = _keys(where, block, _FEATURE_KEYS, {"name", "type", "reason"})
    name = block["name"]
    if not _valid_name(name):
        raise SchemaError(f"{where}.name: {name!r} is not a field name ({NAME_PATTERN})")
    kind = cast(Kind, _choice(f"{where}.type", block["type"], KINDS))
    direction = _choice(f"{where}.direction", block.get("direction", 0), (-1, 0, 1))
    common: dict[str, Any] = {
        "name": name, "kind": kind, "reason": _text(f"{where}.reason", block["reason"]),
        "description": _text(f"{where}.description", block.get("description", ""), required=False),
        "unit": _text(f"{where}.unit", block.get("unit", ""), required=False),
        "missing": _choice(f"{where}.missing", block.get("missing", "refuse"), ("refuse", "model")),
        "direction": direction, "example": block.get("example"),
    }
    if kind == "category":
        if "range" in block or "range_inclusive" in block:
            raise SchemaError(f"{where}.range: a category has levels, not a range")
        if direction != 0:
            raise SchemaError(f"{where}.direction: a category has no order, so no monotone direction (0)")
        levels = _levels(f"{where}.levels", block.get("levels"))
        example = block.get("example")
        if example is not None and level_text(example) not in levels:
            raise SchemaError(f"{where}.example: {example!r} is not one of its levels")
        return FeatureSpec(**common, levels=levels,
                           unknown=_choice(f"{where}.unknown", block.get("unknown", "refuse"), ("refuse", "missing")))
    if "levels" in block or "unknown" in block:
        raise SchemaError(f"{where}.levels: only a category has levels")
    low, high, low_in, high_in = _range(where, block)
    example = block.get("example")
    if example is not None and (isinstance(example, bool) or not isinstance(example, (int, float))):
        raise SchemaError(f"{where}.example: {example!r} is not a number")
    return FeatureSpec(**common, low=low, high=high, low_inclusive=low_in, high_inclusive=high_in)


def parse(block: Any, where: str = "schema") -> ModelSchema:
    """The card's ``schema`` block, checked; ``SchemaError`` naming the first field that is wrong."""
    block = _keys(where, block, {"features", "age", "protected"}, {"features"})
    raw = block["features"]
    if not isinstance(raw, list) or not raw:
        raise SchemaError(f"{where}.features: a non-empty list of feature declarations")
    features = tuple(parse_feature(f"{where}.features[{i}]", f) for i, f in enumerate(raw))
    names = [f.name for f in features]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SchemaError(f"{where}.features[{i}].name: {name!r} is declared twice")
    age = None
    if block.get("age") is not None:
        rule = _keys(f"{where}.age", block["age"], {"field", "unit"}, {"field", "unit"})
        if rule["field"] not in names:
            raise SchemaError(f"{where}.age.field: {rule['field']!r} is not a declared feature")
        if features[names.index(rule["field"])].kind == "category":
            raise SchemaError(f"{where}.age.field: {rule['field']!r} is a category; age must be a number")
        age = AgeRule(rule["field"], cast(AgeUnit, _choice(f"{where}.age.unit", rule["unit"], AGE_UNITS)))
    protected: list[ProtectedAttribute] = []
    raw_protected = block.get("protected", [])
    if not isinstance(raw_protected, list):
        raise SchemaError(f"{where}.protected: a list of attributes")
    for i, p in enumerate(raw_protected):
        p = _keys(f"{where}.protected[{i}]", p, {"name", "levels"}, {"name", "levels"})
        if not _valid_name(p["name"]):
            raise SchemaError(f"{where}.protected[{i}].name: {p['name']!r} is not a field name ({NAME_PATTERN})")
        if p["name"] in names or p["name"] in [q.name for q in protected]:
            raise SchemaError(f"{where}.protected[{i}].name: {p['name']!r} is already declared (a protected "
                              "attribute is never a model feature)")
        protected.append(ProtectedAttribute(p["name"], _levels(f"{where}.protected[{i}].levels", p["levels"])))
    return ModelSchema(features, age, tuple(protected))


def _from_feature(f: Feature) -> FeatureSpec:
    return FeatureSpec(
        name=f.name, kind="integer" if f.dtype == "int" else "number", reason=f.reason, description=f.description,
        unit=f.unit, low=f.low, high=f.high, low_inclusive=f.low_inclusive, high_inclusive=f.high_inclusive,
        direction=f.direction, example=int(f.example) if f.dtype == "int" else f.example,
    )


DEFAULT_SCHEMA = ModelSchema(tuple(_from_feature(f) for f in FEATURES), AgeRule(AGE_FEATURE, "days_before_application"))
"""The ten features of the original system as a card declares them: a card without a ``schema`` block (every card
written before schemas were declared) has this one."""


def of_card(card: Mapping[str, Any]) -> ModelSchema:
    """A card's schema (``DEFAULT_SCHEMA`` when it declares none); ``SchemaError`` naming the field when it is
    wrong, or when the card's ``schema_digest`` is not its block's."""
    if card.get("schema") is None:
        return DEFAULT_SCHEMA
    schema = parse(card["schema"])
    recorded = card.get("schema_digest")
    if recorded is not None and recorded != schema.digest:
        raise SchemaError("schema_digest: differs from the schema block's (a field, level or range edited after "
                          "training: the model was trained on another contract)")
    return schema


def difference(running: ModelSchema, other: ModelSchema) -> str | None:
    """What another schema changes in the running one's contract, in a few words (None: the same contract)."""
    if running.digest == other.digest:
        return None
    if running.names != other.names:
        gone = [n for n in running.names if n not in other.names]
        new = [n for n in other.names if n not in running.names]
        if gone or new:
            return ", ".join(([f"without {', '.join(gone[:3])}"] if gone else [])
                             + ([f"with {', '.join(new[:3])}"] if new else []))
        return "the features in another order"
    ours, theirs = running.contract(), other.contract()
    for a, b in zip(ours["features"], theirs["features"]):
        if a != b:
            key = next(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
            return f"{a['name']}: {key} {a.get(key)!r} → {b.get(key)!r}"
    return "the age rule or the protected attributes"
