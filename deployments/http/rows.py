"""Request bodies → validated rows (an n × 10 float64 matrix in ``FEATURE_NAMES`` order).

pydantic (``deployments.http.schemas``) defines what is valid and words every error. A batch body
first tries a column-wise check in NumPy that accepts only what pydantic accepts (exactly
the ten keys, JSON numbers or booleans, inside the ranges): about 5× cheaper per row.
Anything else goes through pydantic, so errors are the same either way.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from core.features import FEATURE_NAMES, FEATURES
from core.settings import get_settings
from deployments.http.schemas import APPLICANT_ADAPTER, APPLICANTS_ADAPTER, MAX_BATCH_ROWS

_NAMES = frozenset(FEATURE_NAMES)
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


def _matrix(applicants: list[Any]) -> np.ndarray:
    return np.array([[getattr(a, n) for n in FEATURE_NAMES] for a in applicants], dtype=np.float64)


def single_row(body: bytes) -> np.ndarray:
    """One applicant → a 1 × 10 matrix."""
    return _matrix([validate(APPLICANT_ADAPTER, body)])


def _column_ok(
    values: np.ndarray, low: float, high: float, low_inclusive: bool, high_inclusive: bool, integral: bool
) -> bool:
    above = values >= low if low_inclusive else values > low
    below = values <= high if high_inclusive else values < high
    ok = bool(np.all(above & below))  # NaN fails both comparisons
    return ok and (not integral or bool(np.all(values == np.floor(values))))


def fast_rows(body: bytes, data: Any = _INVALID) -> np.ndarray | None:
    """The matrix when every row is plainly valid; ``None`` when pydantic must decide. ``data``: the body
    already parsed."""
    if data is _INVALID:
        data = _loads(body)
    if type(data) is not list or not 1 <= len(data) <= MAX_BATCH_ROWS:
        return None
    if any(type(item) is not dict or item.keys() != _NAMES for item in data):
        return None
    matrix = np.empty((len(data), len(FEATURES)), dtype=np.float64)
    for j, f in enumerate(FEATURES):
        try:
            column = np.array([item[f.name] for item in data])
        except (ValueError, TypeError, OverflowError):  # ragged lists, mixed containers
            return None
        if column.ndim != 1 or column.dtype.kind not in _NUMERIC_KINDS:
            return None  # strings, nulls, lists, objects, integers beyond 64 bits
        values = column.astype(np.float64)
        if not _column_ok(values, f.low, f.high, f.low_inclusive, f.high_inclusive, f.dtype == "int"):
            return None
        matrix[:, j] = values
    return matrix


def batch_rows(body: bytes) -> np.ndarray:
    """A list of applicants → an n × 10 matrix; 422 naming row and field when any row is invalid. The body is
    parsed once: a hostile one costs that parse and a few rows."""
    data = _loads(body)
    matrix = fast_rows(body, data)
    if matrix is not None:
        return matrix
    return _matrix(validate_list(APPLICANT_ADAPTER, APPLICANTS_ADAPTER, body, MAX_BATCH_ROWS, data))
