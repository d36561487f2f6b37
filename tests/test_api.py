"""The HTTP contract of the original system, extended: the real routes in-process (fast), and once over Ray Serve."""

from __future__ import annotations

import json

import httpx
import numpy as np
import onnx
import pytest

from core.artifacts import ONNX_FILE, load_card, resolve_model_dir
from core.features import EXAMPLE_APPLICANT, FEATURE_NAMES, FEATURES
from models.onnx_classifier import OnnxBinaryClassifier
from tests.support.in_process import on_loop
from tests.support.serving import RunningApp

MODEL_DIR = resolve_model_dir(None)
CARD = load_card(MODEL_DIR)


@pytest.fixture(scope="module")
def client(local_api):
    return local_api[0]


def _with(**changes: object) -> dict:
    return {**EXAMPLE_APPLICANT, **changes}


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["detail"]}


def test_health_reports_model(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "model_loaded": True, "model_version": CARD["version"],
                    "threshold": CARD["threshold"]["value"], "log": "ok", "change_refused": None}


def test_served_over_ray_serve(file_app: RunningApp) -> None:
    """The same contract through HAProxy, the ingress replicas and the scorer: health, a decision equal
    to ONNX Runtime's, a 10,000-row batch, 413 for a huge body, 415 for a form post, the docs."""
    classifier = OnnxBinaryClassifier(MODEL_DIR / ONNX_FILE)
    with file_app.client() as c:
        assert c.get("/health").json()["model_version"] == CARD["version"]
        body = c.post("/predict", json=EXAMPLE_APPLICANT).json()
        expected = classifier.predict_proba(np.array([[EXAMPLE_APPLICANT[n] for n in FEATURE_NAMES]]))[0]
        assert body["probability_default"] == round(float(expected), 6)
        assert c.post("/predict/batch", json=[EXAMPLE_APPLICANT] * 10_000).json()["count"] == 10_000
        assert c.post("/predict", content=b" " * (9 * 1024 * 1024),
                      headers={"Content-Type": "application/json"}).status_code == 413
        assert c.post("/predict", content=json.dumps(EXAMPLE_APPLICANT),
                      headers={"Content-Type": "text/plain"}).status_code == 415
        assert c.get("/openapi.json").json()["paths"]["/predict"]


def test_model_file_shape() -> None:
    model = onnx.load(MODEL_DIR / ONNX_FILE)
    (inp,) = model.graph.input
    dims = [d.dim_value or d.dim_param or None for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 10 and [o.name for o in model.graph.output] == ["label", "probabilities"]


def test_valid_prediction(client: httpx.Client) -> None:
    response = client.post("/predict", json=EXAMPLE_APPLICANT)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "prediction", "probability_default", "credit_decision",
                         "model_version", "threshold"}
    assert 0 <= body["probability_default"] <= 1
    assert body["probability_default"] == round(body["probability_default"], 6)
    denied = body["probability_default"] >= body["threshold"]
    assert body["prediction"] == int(denied)
    assert body["credit_decision"] == ("denied" if denied else "approved")
    assert body["model_version"] == CARD["version"]


def test_probability_equals_onnx_runtime(client: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    classifier = OnnxBinaryClassifier(MODEL_DIR / ONNX_FILE)
    for _ in range(20):
        applicant = {f.name: (int(rng.integers(-25000, -7500)) if f.dtype == "int"
                              else float(rng.uniform(f.low + 1e-6, min(f.high, 5e5)))) for f in FEATURES}
        expected = classifier.predict_proba(np.array([[applicant[n] for n in FEATURE_NAMES]]))[0]
        assert client.post("/predict", json=applicant).json()["probability_default"] == round(float(expected), 6)


def test_high_risk_applicant_is_denied(client: httpx.Client) -> None:
    risky = _with(EXT_SOURCES_MEAN=0.05, EXT_SOURCE_2=0.05, EXT_SOURCE_3=0.05, EXT_SOURCES_WEIGHTED=0.15,
                  GOODS_PRICE_CREDIT_PERCENT=0.6, DAYS_BIRTH=-8000, INSTAL_AMT_PAYMENT_sum=0.0)
    body = client.post("/predict", json=risky).json()
    assert body["credit_decision"] == "denied" and body["prediction"] == 1


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_missing_field_is_named(client: httpx.Client, name: str) -> None:
    applicant = dict(EXAMPLE_APPLICANT)
    del applicant[name]
    response = client.post("/predict", json=applicant)
    assert response.status_code == 422
    assert _fields(response) == {name}


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_out_of_range_values(client: httpx.Client, feature) -> None:
    span = feature.high - feature.low
    for bad in (feature.low - 0.01 * span - 1, feature.high + 0.01 * span + 1):
        bad = int(bad) if feature.dtype == "int" else bad
        response = client.post("/predict", json=_with(**{feature.name: bad}))
        assert response.status_code == 422, (feature.name, bad)
        assert _fields(response) == {feature.name}


@pytest.mark.parametrize(("name", "value", "status"), [
    ("AMT_ANNUITY", 0, 422), ("AMT_ANNUITY", 1e6, 200), ("DAYS_BIRTH", 0, 422), ("DAYS_BIRTH", -30000, 200),
    ("EXT_SOURCE_2", 1.0, 200), ("EXT_SOURCE_2", 0.0, 200), ("GOODS_PRICE_CREDIT_PERCENT", 1.5, 200),
    ("DAYS_BIRTH", -15750.5, 422),
])
def test_range_boundaries(client: httpx.Client, name: str, value: float, status: int) -> None:
    assert client.post("/predict", json=_with(**{name: value})).status_code == status


@pytest.mark.parametrize("value", ["0.5", "abc", None, [0.5], {"v": 0.5}])
def test_wrong_types_are_named(client: httpx.Client, value: object) -> None:
    response = client.post("/predict", json=_with(EXT_SOURCE_2=value))
    assert response.status_code == 422
    assert _fields(response) == {"EXT_SOURCE_2"}


def test_bool_is_coerced_like_the_original(client: httpx.Client) -> None:
    as_bool = client.post("/predict", json=_with(EXT_SOURCE_2=True))
    as_one = client.post("/predict", json=_with(EXT_SOURCE_2=1.0))
    assert as_bool.status_code == 200
    assert as_bool.json()["probability_default"] == as_one.json()["probability_default"]


@pytest.mark.parametrize("body", [
    b'{"EXT_SOURCES_MEAN": NaN}', json.dumps(_with(EXT_SOURCE_2=float("nan"))).encode(),
    json.dumps(_with(AMT_ANNUITY=float("inf"))).encode(), b"not json", b"", b'{"EXT_SOURCES_MEAN": 0.5,',
    b"[1, 2, 3]", b"null", b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
], ids=lambda body: repr(body[:30]))
def test_malformed_bodies_get_4xx(client: httpx.Client, body: bytes) -> None:
    """Nested past orjson's 1,024 levels too (the standard parser's RecursionError once answered 500)."""
    for path in ("/predict", "/predict/batch"):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.status_code)
        assert response.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_only_json_bodies_are_scored(client: httpx.Client, content_type: str | None) -> None:
    """A cross-site form post (no preflight) cannot write a decision into the log."""
    headers = {"Content-Type": content_type} if content_type else {}
    for path, body in (("/predict", EXAMPLE_APPLICANT), ("/predict/batch", [EXAMPLE_APPLICANT])):
        response = client.post(path, content=json.dumps(body).encode(), headers=headers)
        assert response.status_code == 415, (path, content_type)


def test_json_with_charset_is_json(client: httpx.Client) -> None:
    response = client.post("/predict", content=json.dumps(EXAMPLE_APPLICANT).encode(),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def test_batch_in_order_and_equal_to_single(client: httpx.Client) -> None:
    applicants = [_with(EXT_SOURCES_MEAN=v) for v in np.linspace(0.05, 0.85, 25).round(4).tolist()]
    response = client.post("/predict/batch", json=applicants)
    assert response.status_code == 200
    results = response.json()["results"]
    assert response.json()["count"] == 25 and len({r["request_id"] for r in results}) == 25
    singles = [client.post("/predict", json=a).json()["probability_default"] for a in applicants]
    assert [r["probability_default"] for r in results] == singles
    assert len(set(singles)) > 10  # distinct rows, so order is really checked
    assert singles == sorted(singles, reverse=True)   # monotone: a higher external score never raises the risk


def test_batch_bad_row_names_index_and_field(client: httpx.Client) -> None:
    applicants = [EXAMPLE_APPLICANT] * 5
    applicants[3] = _with(CREDIT_TERM=7)
    response = client.post("/predict/batch", json=applicants)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["row"] == 3 and error["field"] == "CREDIT_TERM"


@pytest.mark.parametrize("rows", [0, 10_001])
def test_batch_size_limits(client: httpx.Client, rows: int) -> None:
    assert client.post("/predict/batch", json=[EXAMPLE_APPLICANT] * rows).status_code == 422


def test_batch_of_ten_thousand(client: httpx.Client) -> None:
    response = client.post("/predict/batch", json=[EXAMPLE_APPLICANT] * 10_000)
    assert response.status_code == 200 and response.json()["count"] == 10_000


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == EXAMPLE_APPLICANT
    assert set(body["schema"]["required"]) == set(FEATURE_NAMES)
    assert "/predict/batch" in spec["paths"] and "/predictions" in spec["paths"]


def test_model_card_endpoint(client: httpx.Client) -> None:
    card = client.get("/model").json()
    assert card["version"] == CARD["version"] and card["holdout"]["auc"] == CARD["holdout"]["auc"]


def _validate_against_openapi(spec: dict, path: str, body: object, method: str = "post") -> None:
    """The response body against the route's documented 200 schema (OpenAPI 3.1 is JSON Schema 2020-12)."""
    import jsonschema

    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": spec["components"]},
                        cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("explain", [False, True])
def test_responses_match_the_documented_schema(client: httpx.Client, explain: bool) -> None:
    spec = client.get("/openapi.json").json()
    params = {"explain": "true"} if explain else {}
    single = client.post("/predict", params=params, json=EXAMPLE_APPLICANT).json()
    batch = client.post("/predict/batch", params=params, json=[EXAMPLE_APPLICANT] * 3).json()
    _validate_against_openapi(spec, "/predict", single)
    _validate_against_openapi(spec, "/predict/batch", batch)
    assert ("explanation" in single) is explain
    with pytest.raises(Exception):  # noqa: B017  the check can fail: a response missing a required field is refused
        _validate_against_openapi(spec, "/predict", {k: v for k, v in single.items() if k != "threshold"})


def test_every_route_answers_its_declared_shape(local_api) -> None:
    """Every route documents its answer (a response model), and what each GET answers, on a log with decisions,
    outcomes, groups and a monitoring run, is that shape."""
    from core.reference import sample_applicants
    from tests.conftest import API_KEY

    client, backend = local_api
    spec = client.get("/openapi.json").json()
    undeclared = [(path, method) for path, operations in spec["paths"].items() for method, op in operations.items()
                  if "schema" not in op["responses"]["200"].get("content", {}).get("application/json", {})]
    assert not undeclared, undeclared
    key = {"X-API-Key": API_KEY}
    ids = [r["request_id"] for r in client.post("/predict/batch", json=sample_applicants(60, seed=8)).json()["results"]]
    assert client.post("/outcomes", json=[{"request_id": i, "defaulted": n % 2} for n, i in enumerate(ids[:40])],
                       headers=key).status_code == 200
    assert client.post("/groups", json=[{"request_id": i, "attribute": "sex", "group": "fm"[n % 2]}
                                        for n, i in enumerate(ids)], headers=key).status_code == 200
    on_loop(client, backend.monitor_once)
    gets = [path for path, operations in spec["paths"].items() if "get" in operations and path != "/openapi.json"]
    for path in gets:
        answer = client.get(path.replace("{request_id}", ids[0]).replace("{name}", "credit"), headers=key)
        assert answer.status_code == 200, (path, answer.text[:300])
        _validate_against_openapi(spec, path, answer.json(), method="get")
    assert len(gets) == 16, gets   # every GET route of the API (and 5 POSTs): 21


def test_every_answer_is_recorded_with_its_own_values(local_api) -> None:
    """Columns not shuffled: each logged record carries its row's inputs and its answer's probability."""
    client, backend = local_api
    rng = np.random.default_rng(5)
    applicants = [_with(EXT_SOURCE_2=float(v), DAYS_BIRTH=int(d))
                  for v, d in zip(rng.uniform(0.01, 0.99, 500), rng.integers(-25000, -8000, 500))]
    before = len(on_loop(client, backend.logged))
    results = client.post("/predict/batch", json=applicants).json()["results"]
    logged = on_loop(client, backend.logged).slice(before).to_pylist()
    assert [r["request_id"] for r in logged] == [r["request_id"] for r in results]
    for applicant, answer, record in zip(applicants, results, logged):
        assert {n: record[n] for n in FEATURE_NAMES} == applicant
        assert round(record["probability_default"], 6) == answer["probability_default"]
        assert record["credit_decision"] == answer["credit_decision"] and record["endpoint"] == "batch"


def test_no_decision_when_it_cannot_be_recorded(local_api) -> None:
    client, backend = local_api
    backend.refusing = True
    try:
        before = len(on_loop(client, backend.logged))
        response = client.post("/predict", json=EXAMPLE_APPLICANT)
        assert response.status_code == 503 and response.headers["retry-after"]
        assert client.get("/health").json()["status"] == "degraded"
        assert len(on_loop(client, backend.logged)) == before
    finally:
        backend.refusing = False


@pytest.mark.parametrize("key", [None, "", "wrong", "test-api-key "])
def test_log_refuses_missing_empty_and_wrong_keys(client: httpx.Client, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    assert client.get("/predictions", headers=headers).status_code == 401
    assert client.get("/predictions/stats", headers=headers).status_code == 401


def test_log_answers_with_the_key(client: httpx.Client) -> None:
    client.post("/predict", json=EXAMPLE_APPLICANT)
    page = client.get("/predictions", params={"limit": 5}, headers={"X-API-Key": "test-api-key-0123456789"}).json()
    assert page["count"] == 5 and set(page["items"][0]) >= set(FEATURE_NAMES) | {"request_id", "ts"}


def test_bad_row_deep_in_a_large_batch_is_named(client: httpx.Client) -> None:
    applicants = [EXAMPLE_APPLICANT] * 10_000
    applicants[9_876] = _with(AMT_ANNUITY="lots")
    response = client.post("/predict/batch", json=applicants)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["row"] == 9_876 and error["field"] == "AMT_ANNUITY"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:03Z", "0001-01-01", "1969-12-31T23:59:59+00:00"])
def test_log_reads_from_before_1970_are_the_whole_log_not_a_503(local_api, since: str) -> None:
    client, _ = local_api
    client.post("/predict", json=EXAMPLE_APPLICANT)
    for path in ("/predictions", "/performance", "/challenger"):
        response = client.get(path, params={"since": since}, headers={"X-API-Key": "test-api-key-0123456789"})
        assert response.status_code == 200, (path, response.text)
