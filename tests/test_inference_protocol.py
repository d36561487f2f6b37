"""The Open Inference Protocol routes, with bodies encoded and answers decoded by Triton's own client library
(``tritonclient.http``, written by no one here): the same probabilities, decisions and logged reasons as
``/predict/batch`` for the same rows; every malformed tensor a 400 naming what is wrong, in the protocol's
``{"error"}`` form. The tensor reader is cross-checked against the pydantic validators on a categorical schema.
The same client over a real socket against the Serve app: ``tests/test_explain_api.py``."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.exceptions import RequestValidationError
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput, InferResult

from core.features import FEATURE_NAMES
from core.reference import sample_applicants
from core.schema import parse
from deployments.http.rows import RowReader
from deployments.http.tensors import TensorError, TensorReader
from tests.support.own_model import DECLARATIONS, german_table

API_KEY = "test-api-key-0123456789"
MODEL = "/v2/models/credit"


def matrix_input(applicants: list[dict[str, Any]], dtype: str = "FP32") -> InferInput:
    tensor = InferInput("applicants", [len(applicants), len(FEATURE_NAMES)], dtype)
    values = np.array([[a[n] for n in FEATURE_NAMES] for a in applicants])
    tensor.set_data_from_numpy(values.astype(np.float32 if dtype == "FP32" else np.float64), binary_data=False)
    return tensor


def infer(client: Any, inputs: list[InferInput], outputs: list[str] | None = None, **kwargs: Any) -> Any:
    """POST the body ``tritonclient`` makes (JSON tensors), as its ``infer`` sends it: no Content-Type."""
    requested = [InferRequestedOutput(o, binary_data=False) for o in outputs] if outputs else None
    body, json_size = InferenceServerClient.generate_request_body(inputs, outputs=requested, **kwargs)
    assert json_size is None   # all JSON: no binary section
    return client.post(f"{MODEL}/infer", content=body, headers={"content-type": ""})


def texts(values: np.ndarray) -> list[str]:
    """A BYTES output as texts (JSON tensors decode to ``str``, binary ones to ``bytes``)."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def result(response: Any) -> InferResult:
    assert response.status_code == 200, response.text
    return InferenceServerClient.parse_response_body(response.content)


def test_health_and_metadata_as_the_protocol_says(local_api) -> None:  # type: ignore[no-untyped-def]
    client, _ = local_api
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"{MODEL}/ready").json() == {"name": "credit", "ready": True}
    meta = client.get(MODEL).json()
    version = client.get("/model").json()["version"]
    assert meta["name"] == "credit" and meta["versions"] == [version]
    assert meta["inputs"] == [{"name": "applicants", "datatype": "FP32", "shape": [-1, 10]}]
    assert [o["name"] for o in meta["outputs"]] == ["request_id", "probability_default", "prediction",
                                                    "credit_decision", "explanation"]
    assert client.get(f"{MODEL}/versions/{version}").json() == meta
    unknown = client.get("/v2/models/other")
    assert unknown.status_code == 404 and "'credit'" in unknown.json()["error"]
    assert client.get(f"{MODEL}/versions/nope").status_code == 404


def test_tensors_score_as_the_batch_route_does_and_every_denial_is_logged_with_its_reasons(  # type: ignore[no-untyped-def]
        local_api) -> None:
    client, _ = local_api
    applicants = sample_applicants(300, seed=71)
    batch = client.post("/predict/batch", json=applicants).json()["results"]
    got = result(infer(client, [matrix_input(applicants)], request_id="req-1"))
    assert got.get_response()["id"] == "req-1" and got.get_response()["model_name"] == "credit"
    probabilities = got.as_numpy("probability_default")
    assert probabilities.tolist() == [r["probability_default"] for r in batch]
    decisions = texts(got.as_numpy("credit_decision"))
    assert decisions == [r["credit_decision"] for r in batch]
    assert got.as_numpy("prediction").tolist() == [r["prediction"] for r in batch]
    explanations = texts(got.as_numpy("explanation"))
    denied = [i for i, d in enumerate(decisions) if d == "denied"]
    assert denied and all(bool(explanations[i]) == (i in denied) for i in range(len(applicants)))
    ids = texts(got.as_numpy("request_id"))
    assert len(set(ids)) == len(ids)
    for i in denied[:5]:
        notice = client.get(f"/decisions/{ids[i]}", headers={"X-API-Key": API_KEY}).json()
        reasons = json.loads(explanations[i])["reasons"]
        assert reasons and notice["principal_reasons"] == [r["text"] for r in reasons]
    approved = next(i for i, d in enumerate(decisions) if d == "approved")
    record = client.get(f"/decisions/{ids[approved]}", headers={"X-API-Key": API_KEY}).json()
    assert record["credit_decision"] == "approved"


def test_one_tensor_per_feature_asked_outputs_and_explain_for_every_row(local_api) -> None:  # type: ignore[no-untyped-def]
    client, _ = local_api
    applicants = sample_applicants(40, seed=72)
    columns = []
    for name in FEATURE_NAMES:
        tensor = InferInput(name, [len(applicants)], "FP64")
        tensor.set_data_from_numpy(np.array([a[name] for a in applicants], dtype=np.float64), binary_data=False)
        columns.append(tensor)
    got = result(infer(client, columns, ["probability_default", "explanation"], parameters={"explain": True}))
    assert [o["name"] for o in got.get_response()["outputs"]] == ["probability_default", "explanation"]
    explained = client.post("/predict/batch", params={"explain": "true"}, json=applicants).json()["results"]
    assert got.as_numpy("probability_default").tolist() == [r["probability_default"] for r in explained]
    assert [json.loads(e)["reasons"] for e in texts(got.as_numpy("explanation"))] == [
        r["explanation"]["reasons"] for r in explained]


def _error(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    return message


def test_a_malformed_tensor_is_a_400_naming_what_is_wrong(local_api) -> None:  # type: ignore[no-untyped-def]
    client, _ = local_api
    applicants = sample_applicants(5, seed=73)
    values = [[a[n] for n in FEATURE_NAMES] for a in applicants]

    def post(inputs: list[dict[str, Any]], **extra: Any) -> Any:
        return client.post(f"{MODEL}/infer", content=json.dumps({"inputs": inputs, **extra}),
                           headers={"content-type": "application/json"})

    def matrix(data: Any, shape: list[int] | None = None, datatype: str = "FP32") -> dict[str, Any]:
        return {"name": "applicants", "datatype": datatype, "shape": shape or [5, 10], "data": data}

    assert "shape [n, 10], not [5, 9]" in _error(post([matrix([v[:9] for v in values], [5, 9])]))
    assert "shape [n, 10], not [5, 11]" in _error(post([matrix(values, [5, 11])]))
    assert "datatype 'BYTES' is not a number type" in _error(post([matrix(values, datatype="BYTES")]))
    assert "data holds 50 values, shape [6, 10] asks for 60" in _error(post([matrix(values, [6, 10])]))
    nan = [row[:] for row in values]
    nan[3][FEATURE_NAMES.index("EXT_SOURCE_2")] = math.nan   # Python's json writes NaN, as Triton's client does
    response = post([matrix(nan)])
    assert "row 3: EXT_SOURCE_2: a value is required" in _error(response)
    assert response.json()["detail"][0] | {"loc": None} == {"field": "EXT_SOURCE_2", "row": 3, "loc": None,
                                                            "type": "value_error", "msg": response.json()["error"]}
    far = [row[:] for row in values]
    far[1][FEATURE_NAMES.index("EXT_SOURCE_3")] = 7.0
    far[2][FEATURE_NAMES.index("DAYS_BIRTH")] = -100.5
    assert _error(post([matrix(far)])) == ("row 1: EXT_SOURCE_3: 7 is outside [0, 1]; "
                                           "row 2: DAYS_BIRTH: -100.5 is not an integer")
    assert "a list of numbers" in _error(post([matrix([["x"] * 10] * 5)]))
    assert _error(post([{"name": "CREDIT_TERM", "datatype": "FP32", "shape": [1], "data": [0.1]}])).startswith(
        "missing EXT_SOURCES_MEAN, EXT_SOURCE_3,")
    assert "it is the only input (also given: 'age')" in _error(post([matrix(values), {"name": "age", "shape": [1],
                                                                                      "datatype": "FP32",
                                                                                      "data": [1]}]))
    assert "unknown input 'age'" in _error(post([{"name": "age", "datatype": "FP32", "shape": [1], "data": [1]}]))
    assert "unknown output 'score'" in _error(post([matrix(values)], outputs=[{"name": "score"}]))
    assert "explain must be true or false" in _error(post([matrix(values)], parameters={"explain": "yes"}))
    assert "1 to 10,000" in _error(post([matrix([], [0, 10])]))
    assert "not valid JSON" in _error(client.post(f"{MODEL}/infer", content=b"{", headers={"content-type": ""}))
    binary = client.post(f"{MODEL}/infer", content=json.dumps({"inputs": [matrix(values)]}),
                         headers={"content-type": "", "inference-header-content-length": "10"})
    assert "binary tensor data is not served" in _error(binary)
    assert "Content-Type" in _error(client.post(f"{MODEL}/infer", content=b"{}",
                                                headers={"content-type": "text/plain"}), 415)
    from_a_page = client.post(f"{MODEL}/infer", content=b"{}",
                              headers={"content-type": "", "origin": "https://elsewhere.example"})
    assert "Content-Type" in _error(from_a_page, 415)
    assert "unknown model 'nope'" in _error(client.post("/v2/models/nope/infer", content=b"{}"), 404)


def test_the_tensor_reader_accepts_and_encodes_what_pydantic_does_on_a_categorical_schema(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = parse({k: v for k, v in json.loads(DECLARATIONS.read_text()).items()})
    reader, rows = TensorReader(schema), RowReader(schema)
    frame = pd.read_csv(german_table(tmp_path), dtype={"job": str})
    applicants = [{n: (v if not isinstance(v, float) or not math.isnan(v) else None) for n, v in row.items()}
                  for row in frame[list(schema.names)].to_dict("records")]
    inputs = [{"name": f.name, "shape": [len(frame)], "datatype": "BYTES" if f.kind == "category" else "INT64",
               "data": [a[f.name] for a in applicants]} for f in schema.features]
    expected = rows.batch_rows(json.dumps(applicants).encode())
    np.testing.assert_array_equal(reader.rows({"inputs": inputs}), expected)
    assert all(i["datatype"] == ("BYTES" if f.kind == "category" else "FP32")
               for i, f in zip(reader.metadata_inputs(), schema.features))
    housing = schema.names.index("housing")
    inputs[housing] = inputs[housing] | {"data": ["boat", *inputs[housing]["data"][1:]]}
    with pytest.raises(TensorError, match="row 0: housing must be one of free, own, rent"):
        reader.rows({"inputs": inputs})
    with pytest.raises(RequestValidationError):   # pydantic refuses the same row
        rows.batch_rows(json.dumps([applicants[0] | {"housing": "boat"}]).encode())
    with pytest.raises(TensorError, match="category features"):
        reader.rows({"inputs": [{"name": "applicants", "shape": [1, len(schema)], "datatype": "FP32",
                                 "data": [0] * len(schema)}]})
