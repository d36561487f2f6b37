"""Request bodies → validated rows (an n × 10 float64 matrix in ``FEATURE_NAMES`` order).

pydantic (``deployments.http.schemas``) defines what is valid and words every error. A batch body
first tries a column-wise check in NumPy that accepts only what pydantic accepts (exactly
the ten keys, JSON numbers or booleans, inside the ranges): about 5× cheaper per row.
Anything else goes through pydantic, so errors are the same either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from core.features import FEATURE_NAMES, FEATURES
from deployments.http.schemas import APPLICANT_ADAPTER, APPLICANTS_ADAPTER, MAX_BATCH_ROWS

_NAMES = frozenset(FEATURE_NAMES)
_NUMERIC_KINDS = frozenset("biuf")


def validate(adapter: TypeAdapter[Any], body: bytes) -> Any:
    """pydantic-core parses and validates the raw body in one pass; 422 on failure."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def _matrix(applicants: list[Any]) -> np.ndarray:
    return np.array([[getattr(a, n) for n in FEATURE_NAMES] for a in applicants], dtype=np.float64)


def single_row(body: bytes) -> np.ndarray:
    """One applicant → a 1 × 10 matrix."""
    return _matrix([validate(APPLICANT_ADAPTER, body)])


def _column_ok(values: np.ndarray, low: float, high: float, low_inclusive: bool, high_inclusive: bool,
               integral: bool) -> bool:
    above = values >= low if low_inclusive else values > low
    below = values <= high if high_inclusive else values < high
    ok = bool(np.all(above & below))  # NaN fails both comparisons
    return ok and (not integral or bool(np.all(values == np.floor(values))))


def fast_rows(body: bytes) -> np.ndarray | None:
    """The matrix when every row is plainly valid; ``None`` when pydantic must decide."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
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
    """A list of applicants → an n × 10 matrix; 422 naming row and field when any row is invalid."""
    matrix = fast_rows(body)
    return matrix if matrix is not None else _matrix(validate(APPLICANTS_ADAPTER, body))
