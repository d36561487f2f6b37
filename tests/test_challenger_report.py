"""The champion/challenger comparison on known scores: every figure checked against a direct count."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from MLstatkit import Delong_test
from sklearn.metrics import roc_auc_score

from deployments.challenger_report import comparison
from prediction_log.outcomes import Shadowed
from tests.conftest import API_KEY
from tests.support.comparisons import assert_counts_give_the_rows_comparison
from tests.support.in_process import InProcessBackend


def shadowed(n: int = 4000, seed: int = 0) -> Shadowed:
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 10, n)
    q = np.clip(p + rng.normal(0, 0.03, n), 0, 1)
    defaulted = np.where(rng.random(n) < 0.5, (rng.random(n) < p).astype(np.int8), -1).astype(np.int8)
    return Shadowed(np.full(n, "champ", dtype=object), p, p >= 0.09, np.full(n, "chall", dtype=object), q,
                    q >= 0.12, defaulted)


def test_comparison_counts_agree_with_the_arrays() -> None:
    s = shadowed()
    (pair,) = comparison(s)["pairs"]
    assert pair["decisions"] == len(s)
    assert pair["agreement_rate"] == pytest.approx(np.mean(s.denied == s.challenger_denied))
    assert sum(pair["confusion"].values()) == len(s)
    assert pair["confusion"]["champion denied / challenger approved"] == np.sum(s.denied & ~s.challenger_denied)
    assert pair["approval_rate"]["challenger"] == pytest.approx(np.mean(~s.challenger_denied))
    known = s.defaulted >= 0
    assert pair["labelled"] == known.sum()
    assert pair["realized"]["champion"]["auc"] == pytest.approx(roc_auc_score(s.defaulted[known], s.probability[known]))
    assert pair["realized"]["challenger"]["auc"] == pytest.approx(
        roc_auc_score(s.defaulted[known], s.challenger_probability[known]))
    fn = np.sum(~s.challenger_denied[known] & (s.defaulted[known] == 1))
    fp = np.sum(s.challenger_denied[known] & (s.defaulted[known] == 0))
    assert pair["realized"]["challenger"]["cost"] == 10 * fn + fp
    assert len(pair["scatter"]["champion"]) == 500


def test_the_paired_statistics_agree_with_mlstatkit_and_direct_counts() -> None:
    """DeLong's test on the rows against MLstatkit's (aligned with R's pROC::roc.test); McNemar's discordant loans
    and the cost difference against a direct count."""
    s = shadowed()
    (pair,) = comparison(s)["pairs"]
    known = s.defaulted >= 0
    y, p, q = s.defaulted[known], s.probability[known], s.challenger_probability[known]
    z, p_value, _, _, auc_a, auc_b, info = Delong_test(y, p, q)
    stats = pair["statistics"]
    assert stats["labelled"] == known.sum()
    assert (stats["auc"]["champion_auc"], stats["auc"]["challenger_auc"]) == (pytest.approx(auc_a),
                                                                              pytest.approx(auc_b))
    assert stats["auc"]["standard_error"] ** 2 == pytest.approx(info["var_diff"], rel=1e-9)
    assert stats["auc"]["p_value"] == pytest.approx(p_value, rel=1e-6)
    assert stats["auc"]["min_detectable_gap"] == pytest.approx(2.8016 * stats["auc"]["standard_error"], rel=1e-3)
    champion_right = s.denied[known] == (y == 1)
    challenger_right = s.challenger_denied[known] == (y == 1)
    assert stats["mcnemar"]["only_champion_right"] == np.sum(champion_right & ~challenger_right)
    assert stats["mcnemar"]["only_challenger_right"] == np.sum(challenger_right & ~champion_right)
    cost = pair["realized"]["challenger"]["cost"] - pair["realized"]["champion"]["cost"]
    assert stats["cost"]["per_loan"] == pytest.approx(cost / known.sum())
    assert pair["estimated"]["challenger"]["decisions"] == len(s)


def test_challenger_route_needs_the_key_and_answers_without_a_shadow(
        local_api: tuple[TestClient, InProcessBackend]) -> None:
    client, _ = local_api
    assert client.get("/challenger").status_code == 401
    response = client.get("/challenger", headers={"X-API-Key": API_KEY})
    assert response.status_code == 200 and response.json()["shadowed"] == 0


def test_the_file_logs_counts_give_the_comparison_of_its_rows() -> None:
    """What the file log answers (``counted``: the rows counted as PostgreSQL counts them) against the rows
    themselves: the same figures, AUC within its resolution (what binning costs, measured here)."""
    from prediction_log.outcomes import counted

    s = shadowed()
    assert_counts_give_the_rows_comparison(comparison(counted(s)), comparison(s))
    for model in ("champion", "challenger"):   # 1,000 bins over scores crowded near 0: the bound the docs quote
        assert comparison(counted(s))["pairs"][0]["realized"][model]["auc_resolution"] < 0.005
