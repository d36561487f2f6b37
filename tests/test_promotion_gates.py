"""The promotion gates on evidence made from known decisions (``models.promotion_gates``): each gate fails on the
figure it names, before and after outcomes; a card's validation must be recorded and independent; an edit of
serve_config.yaml keeps the operator's comments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.features import AGE_ATTRIBUTE
from core.settings import PROJECT_ROOT, PromotionGates
from deployments.challenger_report import comparison
from models.fairness import fairness_from_counts
from models.promotion_gates import Evidence, check
from models.serve_config_edit import set_user_config, user_config
from models.validation import validation_problem
from prediction_log.outcomes import Shadowed

VALIDATION = {"validator": "A. Validator", "date": "2026-12-01", "intended_use": "Consumer instalment loans",
              "limitations": "Synthetic training data only", "findings": "No material findings"}
CARD = {"trained_by": "trainer", "validation": VALIDATION,
        "monotonicity": {"features": {"EXT_SOURCE_2": {"passed": True}}}}


def shadowed(n: int, noise: float, labelled_share: float, seed: int = 0) -> Shadowed:
    """A champion and a challenger ``noise`` away from it on the same loans, outcomes drawn from the champion."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 12, n)
    q = np.clip(p + rng.normal(0, noise, n), 0.0005, 1)
    y = np.where(rng.random(n) < labelled_share, rng.binomial(1, p), -1).astype(np.int8)
    return Shadowed(np.full(n, "champ", dtype=object), p, p >= 0.09, np.full(n, "cand", dtype=object), q, q >= 0.09,
                    y)


def fairness(b_approval_cut: float = 0.0) -> dict[str, Any]:
    """Fairness answer with the candidate shadowing 1,000 applicants, each counted in its age band and in group A or
    B of ``segment``; the candidate denies ``b_approval_cut`` of B's approvals more."""
    rng = np.random.default_rng(1)
    group = np.where(rng.random(1000) < 0.5, "A", "B")
    champion = rng.random(1000) < 0.2
    candidate = champion | ((group == "B") & (rng.random(1000) < b_approval_cut))
    attribute = np.array([AGE_ATTRIBUTE] * 1000 + ["segment"] * 1000, dtype=object)
    groups = np.concatenate([np.full(1000, "40-61"), group]).astype(object)
    twice = np.ones(2000)
    return fairness_from_counts(attribute, groups, np.tile(champion, 2), np.full(2000, "cand", dtype=object),
                                np.tile(candidate, 2).astype(np.int8), np.full(2000, -1, np.int8), twice * 0.1,
                                twice * 0.1, twice, 0.8, 100)


def results(evidence: Evidence, card: dict[str, Any] | None = None, **settings: Any) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in check(card or CARD, evidence, PromotionGates(**settings))}


def evidence_of(s: Shadowed, fair: dict[str, Any] | None = None) -> Evidence:
    (pair,) = comparison(s)["pairs"]
    return Evidence("champ", "cand", pair, fair if fair is not None else fairness())


def test_a_close_candidate_passes_every_gate_with_outcomes() -> None:
    gates = results(evidence_of(shadowed(30_000, 0.002, 1.0)))
    assert all(g["passed"] for g in gates.values()), gates
    assert "paired AUC difference" in gates["auc_non_inferior"]["detail"]


def test_a_worse_candidate_fails_discrimination_and_names_the_bound() -> None:
    gates = results(evidence_of(shadowed(30_000, 0.08, 1.0)))
    assert not gates["auc_non_inferior"]["passed"] and "lower bound must be above -0.01" in \
        gates["auc_non_inferior"]["detail"]


def test_before_outcomes_the_estimate_decides() -> None:
    gates = results(evidence_of(shadowed(30_000, 0.002, 0.0)))
    assert gates["auc_non_inferior"]["passed"] and "before outcomes" in gates["auc_non_inferior"]["detail"]
    assert gates["calibration"]["passed"] and "estimated default rate" in gates["calibration"]["detail"]
    few = results(evidence_of(shadowed(500, 0.002, 0.0)))
    assert not few["auc_non_inferior"]["passed"] and "not enough evidence" in few["auc_non_inferior"]["detail"]


def test_the_adverse_impact_gate_names_the_group() -> None:
    gates = results(evidence_of(shadowed(30_000, 0.002, 1.0), fairness(b_approval_cut=0.5)))
    assert not gates["adverse_impact"]["passed"] and "segment/B" in gates["adverse_impact"]["detail"]
    never = results(Evidence("champ", "cand", None, {"attributes": {}}))
    assert not never["adverse_impact"]["passed"] and "has not shadowed" in never["auc_non_inferior"]["detail"]


@pytest.mark.parametrize(("card", "named"), [
    ({"trained_by": "trainer"}, "validation: the card records no validation block"),
    ({"trained_by": "trainer", "validation": {**VALIDATION, "date": "yesterday"}}, "validation.date"),
    ({"trained_by": "trainer", "validation": {k: v for k, v in VALIDATION.items() if k != "limitations"}},
     "validation.limitations"),
    ({"validation": VALIDATION}, "trained_by"),
    ({"trained_by": "a. validator", "validation": VALIDATION}, "validation.validator"),
])
def test_validation_must_be_recorded_and_independent(card: dict[str, Any], named: str) -> None:
    problem = validation_problem(card)
    assert problem is not None and problem.startswith(named), problem
    assert validation_problem(CARD) is None


def test_an_edit_of_serve_config_keeps_the_operators_comments(tmp_path: Path) -> None:
    path = tmp_path / "serve_config.yaml"
    path.write_text((PROJECT_ROOT / "serve_config.yaml").read_text())
    set_user_config(path, "Scorer", {"model": "lgbm-0123456789ab", "change_note": "promote: evidence sha256:x"})
    set_user_config(path, "Challenger", {"mode": None})
    text = path.read_text()
    assert "# The one place an operator edits" in text and "# every decision is in the prediction log" in text
    assert user_config(path, "Scorer") == {"model": "lgbm-0123456789ab", "change_note": "promote: evidence sha256:x"}


def test_a_change_the_server_refuses_is_reported_at_once_and_the_file_put_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``apply`` waits for the new version; a refusal the server reports in /health ends the wait (a refusal
    already shown before the deploy does not), and serve_config.yaml is as it was."""
    import subprocess
    import time

    import httpx

    from models import promote

    path = tmp_path / "serve_config.yaml"
    path.write_text((PROJECT_ROOT / "serve_config.yaml").read_text())
    before = path.read_text()
    deployed: list[str] = []
    monkeypatch.setattr(promote, "serve_deploy", lambda config, address: deployed.append(config.read_text())
                        or subprocess.CompletedProcess([], 0, "", ""))
    answers = iter([{"model_version": "old", "change_refused": "an earlier refusal"}]
                   + [{"model_version": "old", "change_refused": "ModelRefused: lgbm-new: parity"}] * 10)
    client = httpx.Client(base_url="http://server", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=next(answers))))
    started = time.monotonic()
    problem = promote.apply(client, path, "http://dashboard", "lgbm-new", "lgbm-new", "promote lgbm-new")
    assert problem is not None and "lgbm-new: parity" in problem and time.monotonic() - started < 10
    assert path.read_text() == before and "lgbm-new" in deployed[0] and deployed[-1] == before
