"""Schemathesis against the served OpenAPI spec: no generated input (valid or not) gets a 5xx.

Every operation is called with schema-conforming (positive) and schema-violating (negative) inputs — wrong types,
out-of-range values, missing fields, odd query strings — with the API key so /predictions is exercised too, on the file
log and on PostgreSQL. Counts per operation go to test-artifacts/resilience.json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support.serving import RunningApp
from tests.test_resilience import record_figures

pytestmark = pytest.mark.slow  # the Serve app on the file log and on PostgreSQL

EXAMPLES = 40
"""Per operation and generation mode."""


def _fuzzer(operation: Any, mode: GenerationMode, app: RunningApp, statuses: dict[int, int]) -> Callable[[], None]:
    """Hypothesis' test of one operation in one mode, counting the statuses it saw (a function of its own: ``@given``
    takes no defaults, and a closure in the loop would bind the loop's last ``statuses``)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=app.url, headers=app.auth(), timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])

    return call


@pytest.mark.parametrize("backend", ["file_app", "pg_app"])
def test_no_server_error_for_any_generated_input(backend: str, request: pytest.FixtureRequest) -> None:
    """On both stores: PostgreSQL once answered 503 (with Retry-After) for input that had passed validation."""
    file_app: RunningApp = request.getfixturevalue(backend)
    schema = schemathesis.openapi.from_url(f"{file_app.url}/openapi.json")
    calls: dict[str, dict[int, int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses = calls.setdefault(f"{operation.label} {mode.value}", {})

            call = _fuzzer(operation, mode, file_app, statuses)
            try:
                call()
            except Unsatisfiable:  # no parameters or body to violate (e.g. GET /health)
                assert mode is GenerationMode.NEGATIVE, operation.label
                del calls[f"{operation.label} {mode.value}"]
    record_figures(f"openapi_fuzz_{backend}", {op: dict(sorted(s.items())) for op, s in calls.items()})
    assert {"POST /predict negative", "POST /predict/batch negative", "GET /predictions negative"} <= set(calls)
    assert all(calls.values())


def test_inputs_that_once_overflowed_postgresql_answer_without_5xx(pg_app: RunningApp) -> None:
    with pg_app.client() as client:
        far = client.get("/predictions", params={"until": "9999-12-31T23:59:59-12:00"}, headers=pg_app.auth())
        assert far.status_code == 200, far.text
        cursor = client.get("/predictions", params={"cursor": "9999-12-31T23:59:59-12:00|ab"}, headers=pg_app.auth())
        assert cursor.status_code == 200, cursor.text
        for outcome in (
            {"request_id": "x", "defaulted": 1, "observed_at": "0001-01-01T00:00:00+14:00"},
            {"request_id": "a\u0000b", "defaulted": 1},
        ):
            response = client.post("/outcomes", json=[outcome], headers=pg_app.auth())
            assert response.status_code == 422, response.text
