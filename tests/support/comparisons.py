"""What a challenger comparison from counts must share with the one from the same decisions' rows."""

from __future__ import annotations

from typing import Any

import pytest


def assert_counts_give_the_rows_comparison(counted: dict[str, Any], rows: dict[str, Any]) -> None:
    """Same pairs, decisions, confusion, rates and costs; correlation and Brier to rounding; AUC within its
    resolution; a scatter sample of at most 500 points; the paired tests: McNemar and the cost difference exact,
    DeLong's difference within the two AUCs' resolutions; the estimates before outcomes from the same decisions."""
    assert counted["shadowed"] == rows["shadowed"] > 0
    assert [(p["champion"], p["challenger"]) for p in counted["pairs"]] == \
        [(p["champion"], p["challenger"]) for p in rows["pairs"]]
    for c, r in zip(counted["pairs"], rows["pairs"]):
        for name in ("decisions", "confusion", "labelled", "agreement_rate", "approval_rate"):
            assert c[name] == r[name], name
        assert c["probability_correlation"] == pytest.approx(r["probability_correlation"], abs=1e-9)
        assert 0 < len(c["scatter"]["champion"]) == len(c["scatter"]["challenger"]) <= 500
        for model in ("champion", "challenger"):
            got, want = c["realized"][model], r["realized"][model]
            assert (got["labelled"], got["cost"]) == (want["labelled"], want["cost"])
            assert got["brier"] == pytest.approx(want["brier"], rel=1e-9)
            assert abs(got["auc"] - want["auc"]) <= got["auc_resolution"] + 1e-12
        got, want = c["statistics"], r["statistics"]
        assert (got["labelled"], got["mcnemar"], got["cost"]["per_loan"]) == \
            (want["labelled"], want["mcnemar"], pytest.approx(want["cost"]["per_loan"], abs=1e-12))
        resolution = c["realized"]["champion"]["auc_resolution"] + c["realized"]["challenger"]["auc_resolution"]
        assert abs(got["auc"]["difference"] - want["auc"]["difference"]) <= resolution + 1e-12
        assert got["auc"]["standard_error"] == pytest.approx(want["auc"]["standard_error"], rel=0.1)
        for model in ("champion", "challenger"):
            got, want = c["estimated"][model], r["estimated"][model]
            assert got["decisions"] == want["decisions"] == c["decisions"]
            assert got["default_rate"] == pytest.approx(want["default_rate"], rel=1e-9)
            assert got["auc"] == pytest.approx(want["auc"], abs=1e-12)
