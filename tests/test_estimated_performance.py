"""Performance estimated before outcomes (``models.estimated``, CBPE): against the row-level expected ROC curve (the
formula NannyML's CBPE uses) and against NannyML itself in an environment of its own; the interval covers the realized
AUC of outcomes drawn from calibrated probabilities as often as it says; ``GET /performance`` serves the estimate per
period and version before any outcome and beside the realized figures after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.reference import sample_applicants
from models.estimated import estimated_from_bins
from models.performance import auc
from prediction_log.labelled_bins import scored
from tests.conftest import API_KEY
from tests.support.in_process import InProcessBackend

THRESHOLD = 0.09


def population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities (skewed low, like credit default) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 12, n)
    return p, rng.binomial(1, p)


def estimate(p: np.ndarray, **kwargs: int) -> dict:
    b = scored(np.zeros(len(p), "datetime64[us]"), np.full(len(p), "v", object), p, p >= THRESHOLD)
    return estimated_from_bins(b.probability_bin, b.denied, b.count, b.probability_sum, b.probability_sq_sum,
                               **kwargs)


def expected_roc_auc(p: np.ndarray) -> float:
    """The expected ROC curve row by row (NannyML's ``estimate_roc_auc``): each decision adds p to the true
    positives and 1 - p to the false positives, in descending score order; the trapezoid area."""
    s = np.sort(p)[::-1]
    tps, fps = np.r_[0, np.cumsum(s)], np.r_[0, np.cumsum(1 - s)]
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def test_the_estimate_from_counts_is_the_row_level_expected_curve() -> None:
    p, _ = population(20_000, seed=1)
    figures = estimate(p)
    assert abs(figures["auc"] - expected_roc_auc(p)) < 1e-4   # bins of 0.001: ties within a bin count half
    assert figures["default_rate"] == pytest.approx(p.mean())
    assert figures["brier"] == pytest.approx(np.mean(p * (1 - p)))
    fn, fp = p[p < THRESHOLD].sum(), (1 - p[p >= THRESHOLD]).sum()
    assert figures["cost_per_decision"] == pytest.approx((10 * fn + fp) / len(p))


def test_two_bins_in_closed_form() -> None:
    """n1 decisions at p1, n2 at p2 > p1: defaults expected p·n; the pairs (default, repayment) ordered right are
    those across bins, half of those within one."""
    n1, p1, n2, p2 = 600, 0.05, 400, 0.3
    figures = estimated_from_bins(np.array([50, 300]), np.array([False, True]), np.array([n1, n2]),
                                  np.array([n1 * p1, n2 * p2]), np.array([n1 * p1 * p1, n2 * p2 * p2]))
    pos1, neg1, pos2, neg2 = n1 * p1, n1 * (1 - p1), n2 * p2, n2 * (1 - p2)
    area = (pos2 * neg1 + 0.5 * (pos1 * neg1 + pos2 * neg2)) / ((pos1 + pos2) * (neg1 + neg2))
    assert figures["auc"] == pytest.approx(area)
    assert figures["default_rate"] == pytest.approx((pos1 + pos2) / (n1 + n2))
    assert figures["cost"] == pytest.approx(10 * pos1 + neg2)


def test_the_interval_covers_the_realized_auc_as_often_as_it_says() -> None:
    """Under calibration, outcomes drawn again and again: the 95 % interval holds the realized AUC in about 95 %."""
    p, _ = population(4_000, seed=2)
    low, high = estimate(p, draws=400)["auc_interval"]
    rng = np.random.default_rng(3)
    realized = np.array([auc(p, rng.binomial(1, p)) for _ in range(400)])
    assert 0.92 <= np.mean((realized >= low) & (realized <= high)) <= 0.98
    shifted = np.array([auc(p, rng.binomial(1, np.clip(p * 0.6 + 0.04, 0, 1))) for _ in range(100)])
    assert np.mean((shifted >= low) & (shifted <= high)) < 0.5   # outcomes not from p: the interval says so


NANNYML_CHECK = """
import json, sys
import pandas as pd, nannyml
from nannyml.calibration import NoopCalibrator
data = json.load(sys.stdin)
estimator = nannyml.CBPE(y_pred_proba="p", y_pred="y_pred", y_true="y", problem_type="classification_binary",
                         metrics=["roc_auc"], chunk_number=1, calibrator=NoopCalibrator())
estimator.fit(pd.DataFrame(data["reference"]))
result = estimator.estimate(pd.DataFrame(data["analysis"])).to_df()
analysis = result[result[("chunk", "period")] == "analysis"]
print(json.dumps({"auc": float(analysis[("roc_auc", "value")].iloc[0])}))
"""


@pytest.fixture(scope="session")
def nannyml_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with NannyML, apart from the project (NannyML pins a kaleido with no wheel for this platform, so it
    cannot be locked beside it); uv's cache makes the second time fast."""
    venv = tmp_path_factory.mktemp("nannyml") / "venv"
    subprocess.run(["uv", "venv", "-q", "-p", f"{sys.version_info.major}.{sys.version_info.minor}", str(venv)],
                   check=True, timeout=300)
    subprocess.run(["uv", "pip", "install", "-q", "nannyml==0.13.1", "statsmodels"], check=True, timeout=600,
                   env={**os.environ, "VIRTUAL_ENV": str(venv)})
    return venv / "bin" / "python"


@pytest.mark.slow
def test_the_estimate_matches_nannymls_cbpe(nannyml_python: Path) -> None:
    reference_p, reference_y = population(20_000, seed=4)
    p, _ = population(20_000, seed=5)
    payload = {"reference": {"p": reference_p.tolist(), "y": reference_y.tolist(),
                             "y_pred": (reference_p >= THRESHOLD).astype(int).tolist()},
               "analysis": {"p": p.tolist(), "y_pred": (p >= THRESHOLD).astype(int).tolist()}}
    done = subprocess.run([str(nannyml_python), "-W", "ignore", "-c", NANNYML_CHECK], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    nannyml_auc = json.loads(done.stdout)["auc"]
    assert abs(estimate(p)["auc"] - nannyml_auc) < 0.001


def test_performance_serves_the_estimate_before_outcomes_and_beside_them_after(
        local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, _ = local_api
    answer = client.post("/predict/batch", json=sample_applicants(500, seed=9))
    assert answer.status_code == 200
    results = answer.json()["results"]
    key = {"X-API-Key": API_KEY}
    before = client.get("/performance", headers=key).json()
    version = results[0]["model_version"]
    overall = before["model_versions"][version]
    assert overall["labelled"] == 0 and overall["auc"] is None
    assert overall["estimated"]["decisions"] >= 500
    expected_rate = np.mean([r["probability_default"] for r in results])
    assert overall["estimated"]["default_rate"] == pytest.approx(expected_rate, abs=0.02)
    assert any(p["estimated"]["decisions"] >= 500 and p["labelled"] == 0 for p in before["periods"])
    rng = np.random.default_rng(9)
    outcomes = [{"request_id": r["request_id"], "defaulted": int(rng.random() < r["probability_default"])}
                for r in results]
    assert client.post("/outcomes", json=outcomes, headers={"X-API-Key": API_KEY}).status_code == 200
    after = client.get("/performance", headers=key).json()["model_versions"][version]
    assert after["labelled"] >= 500 and after["auc"] is not None and after["estimated"]["auc"] is not None
