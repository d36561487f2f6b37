"""Open Inference Protocol request tensors → validated rows (the matrix ``RowReader`` makes from JSON objects).

A request carries either one ``[n, features]`` tensor named ``applicants`` (numbers in the schema's order; only for
a schema without category features) or one ``[n]`` (or ``[n, 1]``) tensor per feature, named as the feature, a
category's as ``BYTES`` holding its levels. Columns are checked in NumPy against the same declarations the pydantic
validators are built from (range, integer, required, levels); every error names the input, the row and the feature,
at most ``max_reported_errors`` of them, so a bad tensor costs its parse and a pass over its columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from core.schema import FeatureSpec, ModelSchema, level_text
from core.settings import get_settings
from deployments.http.schemas import MAX_BATCH_ROWS

MATRIX_INPUT = "applicants"
NUMBER_DATATYPES = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                              "UINT8", "UINT16", "UINT32", "UINT64"})
_NUMERIC_KINDS = frozenset("iuf")


class TensorError(Exception):
    """A request the protocol cannot score: 400 with each problem as ``{field, row, loc, msg, type}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid inference request")
        self.errors = errors

    @classmethod
    def one(cls, loc: Sequence[str | int], msg: str, kind: str = "value_error", field: str | None = None,
            row: int | None = None) -> TensorError:
        item: dict[str, Any] = {"field": field, "loc": list(loc), "msg": msg, "type": kind}
        if row is not None:
            item["row"] = row
        return cls([item])


def parse_request(body: bytes) -> dict[str, Any]:
    """The request object; ``NaN`` and ``Infinity`` (which Python's ``json`` writes, as Triton's client does) are read
    as numbers so the check can name the feature that holds one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise TensorError.one([], f"body is not valid JSON: {exc}", "json_invalid") from None
    if type(data) is not dict:
        raise TensorError.one([], "an inference request is a JSON object with 'inputs'", "model_type")
    return data


def _shape(tensor: Mapping[str, Any], where: list[str | int]) -> tuple[int, ...]:
    shape = tensor.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise TensorError.one([*where, "shape"], "shape must be a list of non-negative integers", "shape")
    return tuple(shape)


def _data(tensor: Mapping[str, Any], where: list[str | int], shape: tuple[int, ...]) -> np.ndarray:
    """The tensor's numbers as float64, reshaped (flat or nested row-major data)."""
    datatype = tensor.get("datatype")
    if datatype not in NUMBER_DATATYPES:
        raise TensorError.one([*where, "datatype"], f"datatype {datatype!r} is not a number type "
                                                      f"({', '.join(sorted(NUMBER_DATATYPES))})", "datatype")
    try:
        values = np.array(tensor.get("data"))
    except (ValueError, TypeError, OverflowError):   # ragged nesting, mixed containers
        values = np.array(None)
    if values.dtype.kind not in _NUMERIC_KINDS or values.ndim == 0:
        raise TensorError.one([*where, "data"], f"data must be a list of numbers for datatype {datatype}",
                              "data")
    if values.size != math.prod(shape):
        raise TensorError.one([*where, "data"], f"data holds {values.size} values, shape {list(shape)} asks for "
                                                f"{math.prod(shape)}", "shape")
    if datatype[0] in "IU" and values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        if not np.all(finite == np.floor(finite)) or not np.all(np.isfinite(values)):
            raise TensorError.one([*where, "data"], f"datatype {datatype} holds only integers", "datatype")
    return values.astype(np.float64).reshape(shape)


class TensorReader:
    """Inference requests → matrices under one schema, and the inputs its metadata declares."""

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.matrix_form = not schema.categorical
        """One ``[n, features]`` tensor is accepted: every feature a number."""
        self._codes = {f.name: {level: float(i) for i, level in enumerate(f.levels)}
                       for f in schema.features if f.kind == "category"}

    def metadata_inputs(self) -> list[dict[str, Any]]:
        """The inputs a client sends, as ``GET /v2/models/{name}`` declares them."""
        if self.matrix_form:
            return [{"name": MATRIX_INPUT, "datatype": "FP32", "shape": [-1, len(self.schema)]}]
        return [{"name": f.name, "datatype": "BYTES" if f.kind == "category" else "FP32", "shape": [-1]}
                for f in self.schema.features]

    def rows(self, request: Mapping[str, Any]) -> np.ndarray:
        """The request's validated rows (``TensorError`` naming input, row and feature)."""
        inputs = request.get("inputs")
        if type(inputs) is not list or not inputs or not all(type(t) is dict for t in inputs):
            raise TensorError.one(["inputs"], "inputs must be a non-empty list of tensors", "inputs")
        names = [t.get("name") for t in inputs]
        if MATRIX_INPUT in names and len(names) > 1:
            others = ", ".join(repr(n) for n in names if n != MATRIX_INPUT)
            raise TensorError.one(["inputs"], f"{MATRIX_INPUT!r} holds every feature: it is the only input (also "
                                              f"given: {others})", "inputs")
        matrix = self._matrix(inputs[0]) if names == [MATRIX_INPUT] else self._columns(inputs, names)
        self._check(matrix, names)
        return matrix

    def _matrix(self, tensor: Mapping[str, Any]) -> np.ndarray:
        where: list[str | int] = ["inputs", 0]
        k = len(self.schema)
        if not self.matrix_form:
            raise TensorError.one(where, f"this model has category features ({self._category_names()}): send one "
                                         "tensor per feature", "inputs")
        shape = _shape(tensor, where)
        if len(shape) != 2 or shape[1] != k:
            raise TensorError.one([*where, "shape"], f"{MATRIX_INPUT} must have shape [n, {k}], not {list(shape)}",
                                  "shape")
        self._row_count(shape[0], where)
        return _data(tensor, where, shape)

    def _columns(self, inputs: list[dict[str, Any]], names: list[Any]) -> np.ndarray:
        expected = self.schema.names
        unknown = [n for n in names if n not in expected]
        if unknown or len(set(names)) != len(names) or len(names) != len(expected):
            missing = [n for n in expected if n not in names]
            what = (f"unknown input {unknown[0]!r}" if unknown else f"missing {', '.join(missing)}" if missing
                    else "an input given twice")
            alt = f" (or one tensor {MATRIX_INPUT!r} of shape [n, {len(expected)}])" if self.matrix_form else ""
            raise TensorError.one(["inputs"], f"{what}: the inputs are one tensor per feature, named "
                                              f"{', '.join(expected)}{alt}", "inputs",
                                  field=unknown[0] if unknown else missing[0] if missing else None)
        n: int | None = None
        matrix: np.ndarray | None = None
        for i, tensor in enumerate(inputs):
            where: list[str | int] = ["inputs", i]
            shape = _shape(tensor, where)
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise TensorError.one([*where, "shape"], f"a feature's tensor has shape [n] or [n, 1], not "
                                                         f"{list(shape)}", "shape", field=tensor["name"])
            if n is None:
                n = self._row_count(shape[0], where)
                matrix = np.empty((n, len(expected)), dtype=np.float64)
            elif shape[0] != n:
                raise TensorError.one([*where, "shape"], f"{shape[0]} rows where {names[0]!r} has {n}", "shape",
                                      field=tensor["name"])
            assert matrix is not None
            j = expected.index(tensor["name"])
            spec = self.schema.features[j]
            matrix[:, j] = (self._levels(tensor, where, spec, shape[0]) if spec.kind == "category"
                            else _data(tensor, where, shape).reshape(-1))
        assert matrix is not None
        return matrix

    def _levels(self, tensor: Mapping[str, Any], where: list[str | int], spec: FeatureSpec, n: int) -> np.ndarray:
        if tensor.get("datatype") != "BYTES":
            raise TensorError.one([*where, "datatype"], f"{spec.name} is a category: datatype BYTES holding one of "
                                                        f"{', '.join(spec.levels)}", "datatype", field=spec.name)
        data = tensor.get("data")
        if type(data) is list and data and all(type(v) is list and len(v) == 1 for v in data):
            data = [v[0] for v in data]   # nested [n, 1]
        if type(data) is not list or len(data) != n:
            raise TensorError.one([*where, "data"], f"data must be a list of {n} levels", "data", field=spec.name)
        codes = self._codes[spec.name]
        out = np.empty(n, dtype=np.float64)
        errors: list[dict[str, Any]] = []
        for row, value in enumerate(data):
            code = codes.get(value if type(value) is str else level_text(value) if type(value) in (int, float)
                             else "")
            if code is None and spec.unknown == "missing":
                code = math.nan
            if code is None:
                errors.append({"field": spec.name, "row": row, "loc": [*where, "data", row], "type": "enum",
                               "msg": f"row {row}: {spec.name} must be one of {', '.join(spec.levels)}"})
                if len(errors) >= get_settings().max_reported_errors:
                    break
                continue
            out[row] = code
        if errors:
            raise TensorError(errors)
        return out

    def _row_count(self, n: int, where: list[str | int]) -> int:
        if not 1 <= n <= MAX_BATCH_ROWS:
            raise TensorError.one([*where, "shape"], f"{n} rows: a request holds 1 to {MAX_BATCH_ROWS:,}", "shape")
        return n

    def _category_names(self) -> str:
        return ", ".join(self.schema.names[j] for j in self.schema.categorical)

    def _check(self, matrix: np.ndarray, names: list[Any]) -> None:
        """Every number against its declaration: finite, within the range, an integer where declared, present
        where required (NaN is a missing value)."""
        cap = get_settings().max_reported_errors
        errors: list[dict[str, Any]] = []
        for j, spec in enumerate(self.schema.features):
            if spec.kind == "category":
                continue
            values = matrix[:, j]
            above = values >= spec.low if spec.low_inclusive else values > spec.low
            below = values <= spec.high if spec.high_inclusive else values < spec.high
            in_range = above & below & np.isfinite(values)
            ok = in_range & (values == np.floor(values)) if spec.kind == "integer" else in_range
            if spec.missing == "model":
                ok |= np.isnan(values)
            if ok.all():
                continue
            for row in np.flatnonzero(~ok)[:cap - len(errors)].tolist():
                v = float(values[row])
                msg = ("a value is required (missing values are refused)" if math.isnan(v)
                       else f"{v:g} is outside {spec.range_text}" if not in_range[row]
                       else f"{v:g} is not an integer")
                loc: list[str | int] = (["inputs", 0, "data", row, j] if names == [MATRIX_INPUT]
                                        else ["inputs", names.index(spec.name), "data", row])
                errors.append({"field": spec.name, "row": row, "loc": loc, "type": "value_error",
                               "msg": f"row {row}: {spec.name}: {msg}"})
            if len(errors) >= cap:
                break
        if errors:
            raise TensorError(errors)
