"""The NumPy fast path for batch bodies accepts exactly what pydantic accepts, with the same values."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError

from core.features import FEATURES
from core.reference import sample_applicants
from deployments.http.rows import APPLICANTS_ADAPTER, _matrix, batch_rows, fast_rows

ODD_VALUES = [None, "0.5", "abc", [], {}, True, False, 0, 1, -1, 1e9, -1e-9, 1.5, 2.0000001, -30000, -0.5,
              10**30, 0.0, 200, 3, 1e8, 1e6]


def _pydantic_matrix(body: bytes) -> np.ndarray | None:
    try:
        return _matrix(APPLICANTS_ADAPTER.validate_json(body))
    except Exception:
        return None


def test_valid_batch_takes_the_fast_path_with_pydantic_values() -> None:
    body = json.dumps(sample_applicants(500, seed=3)).encode()
    fast = fast_rows(body)
    assert fast is not None
    np.testing.assert_array_equal(fast, _pydantic_matrix(body))


def test_fast_path_never_accepts_what_pydantic_refuses() -> None:
    rng = random.Random(7)
    base = sample_applicants(20, seed=5)
    for _ in range(3000):
        rows = [dict(r) for r in base]
        for _ in range(rng.randint(1, 3)):
            row = rng.choice(rows)
            name = rng.choice(FEATURES).name
            action = rng.random()
            if action < 0.1:
                row.pop(name)
            elif action < 0.15:
                row["extra"] = 1
            else:
                row[name] = rng.choice(ODD_VALUES)
        body = json.dumps(rows).encode()
        expected = _pydantic_matrix(body)
        fast = fast_rows(body)
        if fast is not None:
            assert expected is not None, body
            np.testing.assert_array_equal(fast, expected)


@pytest.mark.parametrize("body", [b"[]", b"{}", b"[1]", b"not json", b'[{"EXT_SOURCE_2": NaN}]'])
def test_refused_bodies_raise_validation_errors(body: bytes) -> None:
    with pytest.raises(RequestValidationError):
        batch_rows(body)


def test_a_hostile_batch_costs_a_bounded_answer(local_api) -> None:  # type: ignore[no-untyped-def]
    """10,000 empty objects (30 KB) once cost an 11 MB 422 and 0.77 s; now the errors stop at the cap."""
    from core.settings import get_settings

    client, _ = local_api
    body = b"[" + b",".join([b"{}"] * 10_000) + b"]"
    response = client.post("/predict/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) <= 64 * 1024
    detail = response.json()["detail"]
    cap = get_settings().max_reported_errors
    assert len(detail) == cap + 1 and detail[-1]["type"] == "too_many_errors"
    assert detail[0]["row"] == 0 and detail[0]["field"] is not None
