"""The named gates a candidate must pass before it replaces the champion (``models.promote``), each from the
evidence the running server serves: the shadow comparison (``GET /challenger``: paired statistics on labelled loans,
estimated performance before outcomes) and fair-lending figures on the same applicants (``GET /fairness``).

A gate is a pure function of the card, the evidence and ``core.settings.PromotionGates``: it passes, or fails saying
which figure missed which bound. Before ``min_labelled`` labelled shadowed loans exist, discrimination, cost and
calibration are judged on the estimate (``models.estimated``) over at least ``min_shadowed`` shadowed decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from core.settings import PromotionGates
from models.validation import validation_problem


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Evidence:
    """What the server said about the candidate, shadowing the champion, over the window."""

    champion: str
    candidate: str
    pair: dict[str, Any] | None        # the /challenger pair (champion, candidate), or None when it never shadowed
    fairness: dict[str, Any] | None    # the /fairness answer of the window


def _labelled_path(evidence: Evidence, gates: PromotionGates) -> bool:
    pair = evidence.pair or {}
    return bool(pair.get("statistics")) and pair.get("labelled", 0) >= gates.min_labelled


def _not_enough(evidence: Evidence, gates: PromotionGates) -> str | None:
    pair = evidence.pair
    if pair is None:
        return f"{evidence.candidate} has not shadowed {evidence.champion} in the window: no evidence"
    if pair["labelled"] < gates.min_labelled and pair["decisions"] < gates.min_shadowed:
        return (f"not enough evidence: {pair['labelled']} labelled shadowed loans (need {gates.min_labelled}) and "
                f"{pair['decisions']} shadowed decisions (need {gates.min_shadowed})")
    return None


def validation(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    problem = validation_problem(card)
    return Gate("validation", problem is None, problem or f"validated by {card['validation']['validator']} on "
                                                          f"{card['validation']['date']}")


def monotonicity(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    features = (card.get("monotonicity") or {}).get("features") or {}
    failed = sorted(name for name, result in features.items() if not result.get("passed"))
    if not features:
        return Gate("monotonicity", False, "monotonicity: the card records no monotonicity sweep")
    return Gate("monotonicity", not failed, f"sweep failed for {', '.join(failed)}" if failed
                else f"sweep passed for {len(features)} constrained features")


def _on_evidence(name: str, evidence: Evidence, gates: PromotionGates,
                 labelled: Callable[[dict[str, Any]], tuple[bool, str]],
                 estimated: Callable[[dict[str, Any]], tuple[bool, str]]) -> Gate:
    """A gate judged on the labelled loans when there are enough of them, else on the estimate before outcomes."""
    if (missing := _not_enough(evidence, gates)) is not None:
        return Gate(name, False, missing)
    pair = evidence.pair or {}
    passed, detail = (labelled if _labelled_path(evidence, gates) else estimated)(pair)
    return Gate(name, passed, detail)


def discrimination(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    def labelled(pair: dict[str, Any]) -> tuple[bool, str]:
        auc = pair["statistics"]["auc"]
        low, high = auc["interval"]
        return low > -gates.auc_margin, (
            f"paired AUC difference {auc['difference']:+.4f}, {pair['statistics']['level']:.0%} interval "
            f"[{low:+.4f}, {high:+.4f}] on {pair['labelled']} labelled loans; lower bound must be above "
            f"-{gates.auc_margin} (detectable gap {auc['min_detectable_gap']:.4f})")

    def estimated(pair: dict[str, Any]) -> tuple[bool, str]:
        est = pair["estimated"]
        gap = est["challenger"]["auc"] - est["champion"]["auc"]
        return gap >= -gates.estimated_auc_margin, (
            f"before outcomes: estimated AUC {est['challenger']['auc']:.4f} vs champion {est['champion']['auc']:.4f} "
            f"on {pair['decisions']} shadowed decisions ({gap:+.4f}; at least -{gates.estimated_auc_margin})")

    return _on_evidence("auc_non_inferior", evidence, gates, labelled, estimated)


def cost(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    def labelled(pair: dict[str, Any]) -> tuple[bool, str]:
        difference = pair["statistics"]["cost"]
        low, high = difference["interval"]
        return low <= gates.cost_margin_per_loan, (
            f"paired cost difference {difference['per_loan']:+.4f} per loan, interval [{low:+.4f}, {high:+.4f}]; "
            f"lower bound at most {gates.cost_margin_per_loan}")

    def estimated(pair: dict[str, Any]) -> tuple[bool, str]:
        est = pair["estimated"]
        gap = est["challenger"]["cost_per_decision"] - est["champion"]["cost_per_decision"]
        return gap <= gates.cost_margin_per_loan, (
            f"before outcomes: estimated cost per decision {gap:+.4f} against the champion (at most "
            f"{gates.cost_margin_per_loan})")

    return _on_evidence("cost_not_worse", evidence, gates, labelled, estimated)


def adverse_impact(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    attributes = (evidence.fairness or {}).get("attributes") or {}
    judged = {name: figures["same_applicants"][evidence.candidate]["challenger"]
              for name, figures in attributes.items() if evidence.candidate in (figures.get("same_applicants") or {})}
    if not judged:
        return Gate("adverse_impact", False, "no fairness figures of the candidate on the shadowed applicants")
    failing = [f"{name}/{alert['group']}: ratio {alert['adverse_impact_ratio']:.3f} ({alert['decisions']} decisions)"
               for name, figures in judged.items() for alert in figures["alerts"]]
    return Gate("adverse_impact", not failing,
                f"below {gates.min_adverse_impact_ratio}: {'; '.join(failing)}" if failing
                else f"every judged group at or above {gates.min_adverse_impact_ratio} in {', '.join(sorted(judged))}")


def calibration(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> Gate:
    def labelled(pair: dict[str, Any]) -> tuple[bool, str]:
        error = pair["realized"]["challenger"]["calibration_mean_abs_error"]
        return error is not None and error <= gates.max_calibration_error, (
            f"mean |predicted - observed| over deciles {error:.4f} on labelled loans (at most "
            f"{gates.max_calibration_error})")

    def estimated(pair: dict[str, Any]) -> tuple[bool, str]:
        est = pair["estimated"]
        gap = abs(est["challenger"]["default_rate"] - est["champion"]["default_rate"])
        return gap <= gates.max_calibration_error, (
            f"before outcomes: estimated default rate {est['challenger']['default_rate']:.4f} vs the champion's "
            f"{est['champion']['default_rate']:.4f} (at most {gates.max_calibration_error} apart)")

    return _on_evidence("calibration", evidence, gates, labelled, estimated)


GATES: tuple[Callable[[dict[str, Any], Evidence, PromotionGates], Gate], ...] = (
    validation, monotonicity, discrimination, cost, adverse_impact, calibration)


def check(card: dict[str, Any], evidence: Evidence, gates: PromotionGates) -> list[dict[str, Any]]:
    """Every gate, in order (each is computed even after one fails: the report lists them all)."""
    return [asdict(gate(card, evidence, gates)) for gate in GATES]
