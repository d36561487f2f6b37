"""The outcome round trip over a served app, shared by the file-log and PostgreSQL test modules: what the
store holds and what ``/performance`` reports are compared with what the client was answered and sent."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.polling import wait_until
from core.reference import sample_applicants
from tests.support.serving import RunningApp


def outcome_round_trip(app: RunningApp, stored: Callable[[], dict[str, int]]) -> None:
    """``stored()``: request_id → defaulted as the store itself holds them (read past the API)."""
    logged_before = app.stats()["records_in_store"]
    with app.client() as client:
        decided = []
        for seed in range(3):
            response = client.post("/predict/batch", json=sample_applicants(1000, seed=100 + seed))
            assert response.status_code == 200
            decided += response.json()["results"]
        p = np.array([d["probability_default"] for d in decided])
        truth = (np.random.default_rng(9).random(len(p)) < p).astype(int)
        sent = {d["request_id"]: int(y) for d, y in zip(decided[:2500], truth[:2500])}
        body = [{"request_id": i, "defaulted": y} for i, y in sent.items()] + [{"request_id": "nope", "defaulted": 0}]

        wait_until(lambda: app.stats()["records_in_store"] >= logged_before + len(decided), 30,
                   "the decisions in the log (shipped every ~50 ms)")
        response = client.post("/outcomes", json=body, headers=app.auth())
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 2500, "unknown_request_ids": ["nope"], "duplicates": 0}
        assert stored() == sent

        again = client.post("/outcomes", json=body, headers=app.auth()).json()
        assert again == {"accepted": 0, "unknown_request_ids": ["nope"], "duplicates": 2500}
        flipped = decided[0]["request_id"]
        conflict = client.post("/outcomes", headers=app.auth(), json=[
            {"request_id": decided[2600]["request_id"], "defaulted": 1},
            {"request_id": flipped, "defaulted": 1 - sent[flipped]}])
        assert conflict.status_code == 409 and conflict.json()["detail"]["conflicting_request_ids"] == [flipped]
        assert stored() == sent, "a refused post stored something"

        report = client.get("/performance", headers=app.auth()).json()
    figures = report["model_versions"][decided[0]["model_version"]]
    assert figures["labelled"] == 2500
    # PostgreSQL answers from counts per probability bin: AUC within the bound it reports (the file log: exact)
    assert abs(figures["auc"] - roc_auc_score(truth[:2500], p[:2500])) <= figures["auc_resolution"] + 1e-4
    assert figures["default_rate"] == pytest.approx(truth[:2500].mean())
