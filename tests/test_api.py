"""The HTTP contract of the original system, extended, against the real Serve app."""

from __future__ import annotations

import json

import httpx
import numpy as np
import onnx
import pytest

from models.artifacts import ONNX_FILE, load_card, resolve_model_dir
from models.onnx_classifier import OnnxBinaryClassifier
from serve_app.features import EXAMPLE_APPLICANT, FEATURE_NAMES, FEATURES
from tests.serving import RunningApp

MODEL_DIR = resolve_model_dir(None)
CARD = load_card(MODEL_DIR)


@pytest.fixture(scope="module")
def client(file_app: RunningApp):
    with file_app.client() as c:
        yield c


def _with(**changes: object) -> dict:
    return {**EXAMPLE_APPLICANT, **changes}


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["detail"]}


def test_health_reports_model(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "model_loaded": True, "model_version": CARD["version"],
                    "threshold": CARD["threshold"]["value"]}


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
    b"[1, 2, 3]", b"null",
])
def test_malformed_bodies_get_4xx(client: httpx.Client, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"]


def test_huge_body_is_refused(client: httpx.Client) -> None:
    response = client.post("/predict", content=b" " * (9 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_batch_in_order_and_equal_to_single(client: httpx.Client) -> None:
    applicants = [_with(EXT_SOURCE_2=v) for v in np.linspace(0.05, 0.85, 25).round(4).tolist()]
    response = client.post("/predict/batch", json=applicants)
    assert response.status_code == 200
    results = response.json()["results"]
    assert response.json()["count"] == 25 and len({r["request_id"] for r in results}) == 25
    singles = [client.post("/predict", json=a).json()["probability_default"] for a in applicants]
    assert [r["probability_default"] for r in results] == singles
    assert len(set(singles)) > 10  # distinct rows, so order is really checked


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
