"""Request bodies → validated rows (an n × features float64 matrix in the schema's order; a category as its level's
index, a missing value as NaN).

pydantic (``deployments.http.schemas``, built from the model's schema) defines what is valid and words every error.
A batch body first tries a column-wise check in NumPy that accepts only what pydantic accepts (exactly the
declared keys, JSON numbers or booleans inside the ranges, declared levels): several times cheaper per row.
Anything else goes through pydantic, so errors are the same either way. ``RowReader(schema)`` does both for one
schema; ``single_row`` and ``batch_rows`` are the default model's.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from core.schema import DEFAULT_SCHEMA, ModelSchema, level_text
from core.settings import get_settings
from deployments.http.schemas import MAX_BATCH_ROWS, applicant_adapters, applicant_model

_NUMERIC_KINDS = frozenset("biuf")


def _capped(errors: list[Any]) -> list[Any]:
    """At most ``max_reported_errors`` errors, the last one saying that more were not checked or shown:
    a hostile body of 10,000 empty objects must not cost an 11 MB answer."""
    cap = get_settings().max_reported_errors
    if len(errors) <= cap:
        return errors
    return errors[:cap] + [{"type": "too_many_errors", "loc": (),
                            "msg": f"more than {cap} errors: validation stopped; fix these and resend"}]


def validate(adapter: TypeAdapter[Any], body: bytes) -> Any:
    """pydantic-core parses and validates the raw body in one pass; 422 on failure (errors capped)."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(_capped(exc.errors(include_input=False, include_url=False))) from None


_INVALID = object()


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _loads(body: bytes) -> Any:
    """The parsed body, or ``_INVALID``: orjson, and the standard parser for integers beyond 64 bits."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body, parse_constant=_refuse_constant)   # NaN/Infinity are not JSON
        except (ValueError, RecursionError):   # nested deeper than orjson's 1,024 levels: not an applicant either
            return _INVALID


def validate_list(item: TypeAdapter[Any], whole: TypeAdapter[Any], body: bytes, max_items: int,
                  data: Any = _INVALID) -> list[Any]:
    """A JSON array validated item by item, stopping once ``max_reported_errors`` are found, so a bad
    body costs its parse plus a few items, not a full validation (``whole`` words what is not a
    list of 1 to ``max_items`` items, exactly as before). ``data``: the body already parsed."""
    if data is _INVALID:
        data = _loads(body)
    if data is _INVALID:
        return validate(whole, body)   # pydantic words the JSON error; parsing stops at it
    if type(data) is not list or not 1 <= len(data) <= max_items:
        if type(data) is list:
            raise RequestValidationError([{
                "type": "too_long" if data else "too_short", "loc": ("body",),
                "msg": f"List should have at least 1 item and at most {max_items} items, not {len(data)}"}])
        return validate(whole, body)
    cap = get_settings().max_reported_errors
    items: list[Any] = []
    errors: list[Any] = []
    for i, value in enumerate(data):
        try:
            # an object is validated as parsed; anything else as JSON, so errors are worded as before
            items.append(
                item.validate_python(value) if type(value) is dict else item.validate_json(orjson.dumps(value))
            )
        except ValidationError as exc:
            errors.extend({**e, "loc": (i, *e["loc"])} for e in exc.errors(include_input=False, include_url=False))
            if len(errors) > cap:
                break
    if errors:
        raise RequestValidationError(_capped(errors))
    return items


def _column_ok(
    values: np.ndarray, low: float, high: float, low_inclusive: bool, high_inclusive: bool, integral: bool
) -> bool:
    above = values >= low if low_inclusive else values > low
    below = values <= high if high_inclusive else values < high
    ok = bool(np.all(above & below))  # NaN fails both comparisons
    return ok and (not integral or bool(np.all(values == np.floor(values))))


class RowReader:
    """Bodies → matrices under one schema: its pydantic validators, its fast path, its encoding."""

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.model = applicant_model(schema)
        self.one, self.many = applicant_adapters(self.model)
        self._names = frozenset(schema.names)
        self._plain = all(f.kind != "category" and f.missing == "refuse" for f in schema.features)
        """Every feature a required number: the validated values are the row as they are."""
        self._codes = {f.name: {level: float(i) for i, level in enumerate(f.levels)}
                       for f in schema.features if f.kind == "category"}

    def _matrix(self, applicants: list[Any]) -> np.ndarray:
        names = self.schema.names
        if self._plain:
            return np.array([[getattr(a, n) for n in names] for a in applicants], dtype=np.float64)
        codes = self._codes
        return np.array([[math.nan if (v := getattr(a, n)) is None else (codes[n].get(v, math.nan) if n in codes
                                                                          else v) for n in names]
                         for a in applicants], dtype=np.float64)

    def single_row(self, body: bytes) -> np.ndarray:
        """One applicant → a 1 × features matrix."""
        return self._matrix([validate(self.one, body)])

    def fast_rows(self, body: bytes, data: Any = _INVALID) -> np.ndarray | None:
        """The matrix when every row is plainly valid; ``None`` when pydantic must decide. ``data``: the body
        already parsed."""
        if data is _INVALID:
            data = _loads(body)
        if type(data) is not list or not 1 <= len(data) <= MAX_BATCH_ROWS:
            return None
        names = self._names
        if any(type(item) is not dict or item.keys() != names for item in data):
            return None
        matrix = np.empty((len(data), len(self.schema)), dtype=np.float64)
        for j, f in enumerate(self.schema.features):
            if f.kind == "category":
                codes = self._codes[f.name]
                try:
                    matrix[:, j] = [codes[v if type(v) is str else level_text(v) if type(v) in (int, float)
                                          else ""] for v in (item[f.name] for item in data)]
                except KeyError:   # an unknown level, or null: pydantic words it (or applies the policy)
                    return None
                continue
            try:
                column = np.array([item[f.name] for item in data])
            except (ValueError, TypeError, OverflowError):  # ragged lists, mixed containers
                return None
            if column.ndim != 1 or column.dtype.kind not in _NUMERIC_KINDS:
                return None  # strings, nulls, lists, objects, integers beyond 64 bits
            values = column.astype(np.float64)
            if not _column_ok(values, f.low, f.high, f.low_inclusive, f.high_inclusive, f.kind == "integer"):
                return None
            matrix[:, j] = values
        return matrix

    def batch_rows(self, body: bytes) -> np.ndarray:
        """A list of applicants → an n × features matrix; 422 naming row and field when any row is invalid. The
        body is parsed once: a hostile one costs that parse and a few rows."""
        data = _loads(body)
        matrix = self.fast_rows(body, data)
        if matrix is not None:
            return matrix
        return self._matrix(validate_list(self.one, self.many, body, MAX_BATCH_ROWS, data))


DEFAULT_ROWS = RowReader(DEFAULT_SCHEMA)
APPLICANT_ADAPTER, APPLICANTS_ADAPTER = DEFAULT_ROWS.one, DEFAULT_ROWS.many
single_row, batch_rows, fast_rows, _matrix = (DEFAULT_ROWS.single_row, DEFAULT_ROWS.batch_rows,
                                              DEFAULT_ROWS.fast_rows, DEFAULT_ROWS._matrix)
