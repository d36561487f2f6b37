"""Schemathesis against the served OpenAPI spec: no generated input (valid or not) gets a 5xx.

Every operation is called with schema-conforming (positive) and schema-violating (negative)
inputs — wrong types, out-of-range values, missing fields, odd query strings — with the API
key so /predictions is exercised too. Counts per operation go to test-artifacts/resilience.json.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.serving import RunningApp
from tests.test_resilience import record_figures

EXAMPLES = 40
"""Per operation and generation mode."""


def test_no_server_error_for_any_generated_input(file_app: RunningApp) -> None:
    schema = schemathesis.openapi.from_url(f"{file_app.url}/openapi.json")
    calls: dict[str, dict[int, int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses = calls.setdefault(f"{operation.label} {mode.value}", {})

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=file_app.url, headers=file_app.auth(), timeout=30)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                call()
            except Unsatisfiable:   # no parameters or body to violate (e.g. GET /health)
                assert mode is GenerationMode.NEGATIVE, operation.label
                del calls[f"{operation.label} {mode.value}"]
    record_figures("openapi_fuzz", {op: dict(sorted(s.items())) for op, s in calls.items()})
    assert {"POST /predict negative", "POST /predict/batch negative", "GET /predictions negative"} <= set(calls)
    assert all(calls.values())
