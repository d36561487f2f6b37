"""Performance page: realized AUC, default rate, calibration and cost of decisions with outcomes, against the
model card (``GET /performance``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.api_client import ApiClient, ApiError
from dashboard.context import signed_in_client
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
        left, right = st.columns(2)
        left.dataframe(pd.DataFrame([{"decisions": k, "count": v} for k, v in pair["confusion"].items()]),
                       hide_index=True, width="stretch")
        right.plotly_chart(charts.challenger_scatter(pair["scatter"], pair["champion"], pair["challenger"]),
                           width="stretch")


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
                "(e.g. `python -m monitoring.traffic api --outcomes`).")
        _challenger_section(api, WINDOWS[window])
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
    fairness_section(api, WINDOWS[window])


render()
