"""Reason codes over HTTP: ``?explain=true`` on /predict and /predict/batch; unexplained answers unchanged; the
Open Inference Protocol's client (``tritonclient``, over its own socket) scoring as /predict/batch, every decision
logged with the reasons of every denial."""

from __future__ import annotations

import json
import math
import re

import pytest

from core.features import FEATURE_NAMES
from core.polling import wait_until
from core.reference import sample_applicants
from core.settings import PROJECT_ROOT
from tests.support.file_log import log_lines
from tests.support.serving import RunningApp


def _check(item: dict) -> None:
    explanation = item["explanation"]
    assert set(explanation["contributions"]) == set(FEATURE_NAMES)
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert math.isclose(total, explanation["raw_score"], abs_tol=1e-9)
    assert abs(1 / (1 + math.exp(-explanation["raw_score"])) - item["probability_default"]) < 2e-6
    reasons = explanation["reasons"]
    assert all(r["contribution"] > 0 and r["text"] for r in reasons)
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)


def test_single_prediction_with_reason_codes(file_app: RunningApp) -> None:
    applicant = sample_applicants(1, seed=31)[0]
    with file_app.client() as client:
        plain = client.post("/predict", json=applicant).json()
        explained = client.post("/predict", params={"explain": "true"}, json=applicant).json()
        bad = client.post("/predict", params={"explain": "maybe"}, json=applicant)
    assert "explanation" not in plain
    assert explained["probability_default"] == plain["probability_default"]
    assert explained["credit_decision"] == plain["credit_decision"]
    _check(explained)
    assert bad.status_code == 422 and "explain" in bad.text


def test_batch_with_reason_codes_is_in_order_and_logged_with_them(file_app: RunningApp) -> None:
    applicants = sample_applicants(200, seed=32)
    with file_app.client() as client:
        plain = client.post("/predict/batch", json=applicants).json()["results"]
        explained = client.post("/predict/batch", params={"explain": "1"}, json=applicants).json()
    assert explained["count"] == 200
    for a, b in zip(plain, explained["results"]):
        assert a["probability_default"] == b["probability_default"]
        _check(b)
    explained_by_id = {r["request_id"]: r["explanation"] for r in explained["results"]}
    plain_ids = {r["request_id"] for r in plain}
    wanted = set(explained_by_id) | plain_ids
    logged = wait_until(lambda: (found := _logged(file_app)) and wanted <= set(found) and found, 30,
                        "the decisions in the log")
    assert all(logged[i]["explanation"] == e for i, e in explained_by_id.items())
    for answer in plain:   # not asked: a denial is logged with its reasons all the same, an approval without
        reasons = logged[answer["request_id"]]["explanation"]
        assert (reasons is not None) == (answer["credit_decision"] == "denied"), answer


def test_tritonclient_scores_a_thousand_applicants_as_the_batch_route_does(file_app: RunningApp) -> None:
    import numpy as np
    from tritonclient.http import InferenceServerClient, InferenceServerException, InferInput, InferRequestedOutput

    applicants = sample_applicants(1000, seed=33)
    client = InferenceServerClient(url=file_app.url.removeprefix("http://"), network_timeout=30)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("credit")
    assert client.get_model_metadata("credit")["inputs"] == [{"name": "applicants", "datatype": "FP32",
                                                              "shape": [-1, len(FEATURE_NAMES)]}]
    tensor = InferInput("applicants", [len(applicants), len(FEATURE_NAMES)], "FP32")
    tensor.set_data_from_numpy(np.array([[a[n] for n in FEATURE_NAMES] for a in applicants], dtype=np.float32),
                               binary_data=False)
    got = client.infer("credit", [tensor], request_id="oip-1")   # every output, as the client asks by default
    outputs = {o: [v.decode() if isinstance(v, bytes) else v for v in got.as_numpy(o).tolist()]
               for o in ("request_id", "probability_default", "credit_decision", "explanation")}
    with file_app.client() as http:
        batch = http.post("/predict/batch", json=applicants).json()["results"]
    assert outputs["probability_default"] == [r["probability_default"] for r in batch]
    assert outputs["credit_decision"] == [r["credit_decision"] for r in batch]
    logged = wait_until(lambda: (found := _logged(file_app)) and set(outputs["request_id"]) <= set(found) and found,
                        30, "the protocol's decisions in the log")
    for request_id, decision, explanation in zip(outputs["request_id"], outputs["credit_decision"],
                                                 outputs["explanation"]):
        record = logged[request_id]
        assert record["endpoint"] == "infer" and record["credit_decision"] == decision
        assert (record["explanation"] is not None) == (decision == "denied") == bool(explanation)
        if explanation:
            assert record["explanation"] == json.loads(explanation)
    nan = np.array([[a[n] for n in FEATURE_NAMES] for a in applicants[:3]], dtype=np.float32)
    nan[2, FEATURE_NAMES.index("CREDIT_TERM")] = np.nan
    tensor = InferInput("applicants", list(nan.shape), "FP32")
    tensor.set_data_from_numpy(nan, binary_data=False)
    try:
        client.infer("credit", [tensor], outputs=[InferRequestedOutput("prediction", binary_data=False)])
        raise AssertionError("a NaN was scored")
    except InferenceServerException as exc:
        assert exc.status() == "400" and "row 2: CREDIT_TERM: a value is required" in exc.message()
    client.close()


def test_the_docs_tritonclient_example_scores(file_app: RunningApp, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/inference-protocol.md's example, as written, against this server."""
    text = (PROJECT_ROOT / "docs" / "inference-protocol.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    exec(example.replace("127.0.0.1:8000", file_app.url.removeprefix("http://")), {})
    printed = capsys.readouterr().out
    assert re.fullmatch(r"\[0\.\d+\] \['(approved|denied)'\]\n", printed), printed


def _logged(app: RunningApp) -> dict[str, dict]:
    """The file log's records by request_id."""
    return {(row := json.loads(line))["request_id"]: row for line in log_lines(app.data_dir)}


def test_every_denial_is_logged_with_its_reasons_without_asking(local_api) -> None:  # type: ignore[no-untyped-def]
    """Regulation B: the principal reasons of every denial are on record, whether or not the client asked."""
    from core.features import AGE_FEATURE, is_elderly
    from core.reference import sample_applicants
    from tests.conftest import API_KEY

    client, backend = local_api
    applicants = sample_applicants(400, seed=31)
    answers = client.post("/predict/batch", json=applicants).json()["results"]
    answers += [client.post("/predict", json=a).json() for a in applicants[:100]]
    assert all("explanation" not in a or a["explanation"] is None for a in answers)   # the answer is as before
    denied = [a for a in answers if a["credit_decision"] == "denied"]
    assert denied, "the sample must hold denials"
    from prediction_log.records import as_dicts
    from tests.support.in_process import on_loop

    records = {r["request_id"]: r for r in as_dicts(on_loop(client, backend.logged))}
    for answer in answers:
        explanation = records[answer["request_id"]]["explanation"]
        assert (explanation is not None) == (answer["credit_decision"] == "denied"), answer
    notice = client.get(f"/decisions/{denied[0]['request_id']}", headers={"X-API-Key": API_KEY}).json()
    assert notice["credit_decision"] == "denied" and 1 <= len(notice["principal_reasons"]) <= 4
    assert notice["reasons_on_record"] and notice["model_version"] == denied[0]["model_version"]
    assert client.get(f"/decisions/{denied[0]['request_id']}").status_code == 401
    assert client.get("/decisions/no-such-id", headers={"X-API-Key": API_KEY}).status_code == 404
    for applicant, answer in zip(applicants, answers):
        if answer["credit_decision"] == "denied" and is_elderly(applicant[AGE_FEATURE]):
            reasons = records[answer["request_id"]]["explanation"]["reasons"]
            assert all(r["feature"] != AGE_FEATURE for r in reasons), "age cited to an applicant aged 62+"
