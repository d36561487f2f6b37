"""A lender's applicants table: read, declared (the lender's declarations, the rest inferred) and checked before any
training.

Every problem with the table is a ``TableRefused`` naming the column (a target that is not 0/1, a text in a number
column, a declared level the table never shows, a value outside its declared range or levels, a missing value where
the declaration refuses them), raised before a tree is grown. Inferred declarations are written to the card and
listed under ``schema_review``: a person should read them (reason texts above all) before the model serves.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.schema import (
    AGE_UNITS,
    MAX_LEVELS,
    AgeRule,
    FeatureSpec,
    MissingPolicy,
    ModelSchema,
    ProtectedAttribute,
    SchemaError,
    level_text,
    parse,
    parse_feature,
)

MIN_ROWS = 200
MIN_EACH_CLASS = 20
CATEGORY_LEVELS_INFERRED = 64
"""A text column with more distinct values than this is refused rather than guessed to be a category."""


class TableRefused(ValueError):
    """The table cannot be trained on; the message names the column."""


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (any compression pandas reads) or Parquet file; text columns stay text."""
    if not path.is_file():
        raise TableRefused(f"{path.name}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=True, low_memory=False)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _infer(name: str, column: pd.Series) -> FeatureSpec:
    present = column.dropna()
    missing: MissingPolicy = "model" if column.isna().any() else "refuse"
    reason = f"{name} (inferred: review this text)"
    if _is_number_column(column):
        integral = pd.api.types.is_integer_dtype(present) or bool(np.all(np.mod(present.to_numpy(float), 1) == 0))
        low, high = float(present.min()), float(present.max())
        if low >= 0:   # the guess a lender most often means for a non-negative column: [0, ∞); declare to narrow it
            low, high = 0.0, math.inf
        return FeatureSpec(name, "integer" if integral else "number", reason, low=low, high=high, missing=missing,
                           example=(int if integral else float)(present.median()))
    levels = sorted({level_text(v) for v in present})
    if len(levels) > CATEGORY_LEVELS_INFERRED:
        raise TableRefused(f"column {name!r}: {len(levels)} distinct texts, too many to infer a category "
                           f"(at most {CATEGORY_LEVELS_INFERRED}); declare it, or leave it out with --ignore")
    return FeatureSpec(name, "category", reason, levels=tuple(levels), missing=missing, example=levels[0])


def declare(frame: pd.DataFrame, target: str, declarations: dict[str, Any] | None,
            ignore: tuple[str, ...] = ()) -> tuple[ModelSchema, list[str]]:
    """The schema for ``frame``: the declared features in their order, then every other column (not the target,
    a protected attribute or ignored) inferred, in the table's order. Returns it and the inferred fields."""
    declarations = declarations or {}
    unknown = sorted(set(declarations) - {"features", "age", "protected"})
    if unknown:
        raise SchemaError(f"declarations.{unknown[0]}: not a field of the declarations (features, age, protected)")
    declared = [parse_feature(f"declarations.features[{i}]", f) for i, f in enumerate(declarations.get("features", []))]
    protected = [ProtectedAttribute(p["name"], tuple(level_text(v) for v in p["levels"])) if "levels" in p
                 else _infer_protected(frame, p["name"]) for p in declarations.get("protected", [])]
    taken = {target, *ignore, *(f.name for f in declared), *(p.name for p in protected)}
    for name in [*ignore, *(p.name for p in protected)]:
        if name not in frame.columns:
            raise TableRefused(f"column {name!r}: named in the declarations but not in the table")
    inferred = [_infer(str(c), frame[c]) for c in frame.columns if c not in taken]
    age = declarations.get("age")
    rule = None if age is None else AgeRule(str(age.get("field")), age.get("unit"))
    if rule is not None and rule.unit not in AGE_UNITS:
        raise SchemaError(f"declarations.age.unit: {rule.unit!r} is not one of {', '.join(AGE_UNITS)}")
    schema = ModelSchema(tuple(declared + inferred), rule, tuple(protected))
    parse(json.loads(json.dumps(schema.to_card())))   # the card's own checks (names, age field, duplicates)
    return schema, [f.name for f in inferred]


def _infer_protected(frame: pd.DataFrame, name: str) -> ProtectedAttribute:
    if name not in frame.columns:
        raise TableRefused(f"column {name!r}: declared protected but not in the table")
    levels = sorted({level_text(v) for v in frame[name].dropna()})
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise TableRefused(f"column {name!r}: a protected attribute needs 1 to {MAX_LEVELS} groups, "
                           f"found {len(levels)}")
    return ProtectedAttribute(name, tuple(levels))


def _check_target(frame: pd.DataFrame, target: str) -> None:
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:20]))
        raise TableRefused(f"column {target!r}: the target is not in the table (columns: {shown})")
    column = frame[target]
    if column.isna().any():
        raise TableRefused(f"column {target!r}: the target is missing in {int(column.isna().sum())} rows")
    values = set(column.unique().tolist())
    if not values <= {0, 1}:
        odd = sorted(map(repr, values - {0, 1}))[:5]
        raise TableRefused(f"column {target!r}: the target must be 0/1 (1 = defaulted), found {', '.join(odd)}")
    counts = column.value_counts()
    if min(int(counts.get(0, 0)), int(counts.get(1, 0))) < MIN_EACH_CLASS:
        raise TableRefused(f"column {target!r}: fewer than {MIN_EACH_CLASS} rows of one class "
                           f"({int(counts.get(0, 0))} zeros, {int(counts.get(1, 0))} ones)")


def _check_feature(f: FeatureSpec, column: pd.Series) -> None:
    where = f"column {f.name!r}"
    missing = column.isna()
    if missing.any() and f.missing == "refuse":
        raise TableRefused(f"{where}: {int(missing.sum())} missing values, and its declaration refuses them "
                           "(missing: model lets the model take them)")
    present = column[~missing]
    if f.kind == "category":
        seen = {level_text(v) for v in present}
        never = [level for level in f.levels if level not in seen]
        if never:
            raise TableRefused(f"{where}: declared level {never[0]!r} never occurs in the table")
        extra = sorted(seen - set(f.levels))
        if extra:
            raise TableRefused(f"{where}: value {extra[0]!r} is not one of its declared levels")
        return
    if not _is_number_column(column):
        numbers = pd.to_numeric(present, errors="coerce")
        texts = present[numbers.isna()]
        first = f" ({texts.iloc[0]!r}, data row {int(np.flatnonzero(column.index == texts.index[0])[0]) + 1})" \
            if len(texts) else ""
        raise TableRefused(f"{where}: declared {f.kind} but holds text{first}")
    values = present.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise TableRefused(f"{where}: holds infinite values")
    if f.kind == "integer" and not np.all(np.mod(values, 1) == 0):
        raise TableRefused(f"{where}: declared integer but holds fractions")
    above = values >= f.low if f.low_inclusive else values > f.low
    below = values <= f.high if f.high_inclusive else values < f.high
    outside = values[~(above & below)]
    if len(outside):
        raise TableRefused(f"{where}: {len(outside)} values outside its declared range, e.g. {outside[0]:g}")


def check(frame: pd.DataFrame, schema: ModelSchema, target: str) -> None:
    """Refuse a table that does not fit its schema, naming the first column that does not."""
    if len(frame) < MIN_ROWS:
        raise TableRefused(f"the table has {len(frame)} rows; at least {MIN_ROWS} are needed to train and validate")
    _check_target(frame, target)
    for f in schema.features:
        if f.name not in frame.columns:
            raise TableRefused(f"column {f.name!r}: declared but not in the table")
        _check_feature(f, frame[f.name])
    for p in schema.protected:
        seen = {level_text(v) for v in frame[p.name].dropna()}
        extra = sorted(seen - set(p.levels))
        if extra:
            raise TableRefused(f"column {p.name!r}: group {extra[0]!r} is not one of its declared levels")
