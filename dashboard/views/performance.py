"""Performance page: realized AUC, default rate, calibration and cost of decisions with outcomes, and the figures
estimated before outcomes, against the model card (``GET /performance``); the challenger's evidence with its
statistics and the newest promotion check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.api_client import ApiClient, ApiError
from dashboard.context import settings, signed_in_client
from dashboard.fairness_panel import fairness_section

WINDOWS = {"30 days": 30, "90 days": 90, "180 days": 180, "365 days": 365}


@st.cache_data(ttl=60)
def compared(api: ApiClient, days: int) -> dict[str, Any]:
    return api.challenger(datetime.now(UTC) - timedelta(days=days))


def _challenger_section(api: ApiClient, days: int) -> None:
    st.subheader("Champion vs challenger (shadow)")
    try:
        report = compared(api, days)
    except ApiError as error:
        st.error(str(error))
        return
    if not report["pairs"]:
        st.info("No shadow challenger in this window: set the Challenger's mode to shadow in serve_config.yaml.")
        return
    for pair in report["pairs"]:
        st.caption(f"{pair['champion']} (champion) vs {pair['challenger']} (challenger), "
                   f"{pair['decisions']:,} decisions")
        a, b, c, d = st.columns(4)
        a.metric("Agreement", f"{pair['agreement_rate']:.1%}")
        b.metric("Approval: champion", f"{pair['approval_rate']['champion']:.1%}")
        c.metric("Approval: challenger", f"{pair['approval_rate']['challenger']:.1%}")
        realized = pair["realized"]
        d.metric("AUC champion / challenger", "—" if realized is None else
                 f"{realized['champion']['auc'] or 0:.3f} / {realized['challenger']['auc'] or 0:.3f}")
        _evidence(pair)
        left, right = st.columns(2)
        left.dataframe(pd.DataFrame([{"decisions": k, "count": v} for k, v in pair["confusion"].items()]),
                       hide_index=True, width="stretch")
        right.plotly_chart(charts.challenger_scatter(pair["scatter"], pair["champion"], pair["challenger"]),
                           width="stretch")


def _evidence(pair: dict[str, Any]) -> None:
    """How sure the difference is: paired statistics on the labelled loans, else the estimates before outcomes."""
    stats, estimated = pair.get("statistics"), pair.get("estimated")
    a, b, c, d = st.columns(4)
    if stats and stats["auc"]:
        low, high = stats["auc"]["interval"]
        a.metric("AUC difference (challenger − champion)", f"{stats['auc']['difference']:+.4f}",
                 help=f"DeLong, {stats['level']:.0%} interval [{low:+.4f}, {high:+.4f}] on {stats['labelled']:,} "
                      "labelled loans")
        b.metric("Smallest detectable gap", f"{stats['auc']['min_detectable_gap']:.4f}",
                 help="80 % power at the 5 % level, from the same standard error")
        mcnemar = stats["mcnemar"]
        c.metric("McNemar p", "—" if mcnemar["p_value"] is None else f"{mcnemar['p_value']:.3g}",
                 help=f"only the champion right: {mcnemar['only_champion_right']:,}; only the challenger right: "
                      f"{mcnemar['only_challenger_right']:,}")
        if stats["cost"]:
            low, high = stats["cost"]["interval"]
            d.metric("Cost difference per loan", f"{stats['cost']['per_loan']:+.4f}", help=f"[{low:+.4f}, {high:+.4f}]")
    elif estimated:
        a.metric("Estimated AUC champion", f"{estimated['champion']['auc'] or 0:.4f}",
                 help="Before outcomes (CBPE): from the probabilities alone; cannot see concept drift")
        b.metric("Estimated AUC challenger", f"{estimated['challenger']['auc'] or 0:.4f}")
        c.metric("Estimated default rate (champion / challenger)",
                 f"{estimated['champion']['default_rate']:.2%} / {estimated['challenger']['default_rate']:.2%}")


def _promotion_section() -> None:
    """The gates of the newest promotion report (``python -m models.promote``)."""
    reports = sorted((settings().reports_dir / "promotions").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return
    report = json.loads(reports[-1].read_text())
    st.subheader("Latest promotion check")
    (st.success if report["passed"] else st.error)(
        f"{report['candidate']} over {report['champion']} at {report['at']}: "
        + ("every gate passed" if report["passed"] else f"refused by {', '.join(report['failed'])}")
        + (f"; override by {report['override']['by']}" if report.get("override") else ""))
    st.dataframe(pd.DataFrame(report["gates"]), hide_index=True, width="stretch")
    st.caption(f"Evidence digest (SHA-256) {report['digest']}")


@st.cache_data(ttl=60, show_spinner="Joining decisions with outcomes…")
def realized(api: ApiClient, days: int, by: str) -> dict[str, Any]:
    return api.performance(datetime.now(UTC) - timedelta(days=days), by)


def _delta(value: float | None, card: float | None, fmt: str) -> str | None:
    return None if value is None or card is None else f"{value - card:{fmt}} vs card"


def render() -> None:
    st.title("Realized performance")
    api = signed_in_client()
    top = st.columns(2)
    window = top[0].selectbox("Decisions made in the last", list(WINDOWS), index=1)
    by = top[1].radio("Per", ["week", "day"], horizontal=True)
    try:
        report = realized(api, WINDOWS[window], by)
    except ApiError as error:
        st.error(str(error))
        return
    if not report["labelled"]:
        st.info("No decisions with outcomes in this window: post them to `/outcomes` "
                "(e.g. `python -m monitoring.traffic api --outcomes`). Until they arrive, the figures below are "
                "estimated from the probabilities (CBPE).")
        _estimated_section(report)
        _challenger_section(api, WINDOWS[window])
        _promotion_section()
        fairness_section(api, WINDOWS[window])
        return
    version, figures = max(report["model_versions"].items(), key=lambda item: item[1]["labelled"])
    card = figures["expected"] or {}
    a, b, c, d = st.columns(4)
    a.metric("Decisions with outcomes", f"{report['labelled']:,}")
    b.metric("AUC", f"{figures['auc']:.3f}" if figures["auc"] is not None else "—",
             _delta(figures["auc"], card.get("auc"), "+.3f"))
    c.metric("Default rate", f"{figures['default_rate']:.2%}",
             _delta(figures["default_rate"] * 100, card.get("default_rate", 0) * 100 if card else None, "+.2f"),
             delta_color="inverse")
    d.metric("Cost per decision", f"{figures['cost_per_decision']:.3f}",
             _delta(figures["cost_per_decision"], card.get("cost_per_decision"), "+.3f"), delta_color="inverse")
    st.caption(f"Model {version}; the card's figures are its holdout's.")
    periods = pd.DataFrame(report["periods"])
    left, right = st.columns(2)
    left.plotly_chart(charts.realized_auc(periods, card.get("auc")), width="stretch")
    right.plotly_chart(charts.default_rate(periods[periods["model_version"] == version], card.get("default_rate")),
                       width="stretch")
    left, right = st.columns(2)
    if figures["calibration"]:
        left.plotly_chart(charts.calibration(figures["calibration"]), width="stretch")
    right.plotly_chart(charts.cost_per_decision(periods[periods["model_version"] == version],
                                                card.get("cost_per_decision")), width="stretch")
    _challenger_section(api, WINDOWS[window])
    _promotion_section()
    fairness_section(api, WINDOWS[window])


def _estimated_section(report: dict[str, Any]) -> None:
    """The performance estimated before outcomes, of the version that made most decisions."""
    versions = {v: f for v, f in report["model_versions"].items() if f.get("estimated", {}).get("decisions")}
    if not versions:
        return
    version, figures = max(versions.items(), key=lambda item: item[1]["estimated"]["decisions"])
    estimate, card = figures["estimated"], figures["expected"] or {}
    a, b, c, d = st.columns(4)
    a.metric("Decisions (no outcome yet)", f"{estimate['decisions']:,}")
    b.metric("Estimated AUC", "—" if estimate["auc"] is None else f"{estimate['auc']:.3f}",
             _delta(estimate["auc"], card.get("auc"), "+.3f"),
             help="95 % of realized AUCs fall in {} if the probabilities are calibrated".format(
                 estimate["auc_interval"]))
    c.metric("Estimated default rate", f"{estimate['default_rate']:.2%}")
    d.metric("Estimated cost per decision", f"{estimate['cost_per_decision']:.3f}",
             _delta(estimate["cost_per_decision"], card.get("cost_per_decision"), "+.3f"), delta_color="inverse")
    st.caption(f"Model {version}; estimated by CBPE from every decision's probability (docs/model-risk.md).")
    periods = pd.DataFrame(report["periods"])
    st.plotly_chart(charts.realized_auc(periods, card.get("auc")), width="stretch")


render()
