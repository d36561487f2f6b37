"""Monitoring page: the prediction log over time and the latest drift report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.api_client import ApiClient, ApiError
from dashboard.context import settings, signed_in_client
from dashboard.drift import feature_table, latest_report

WINDOWS = {"1 hour": timedelta(hours=1), "24 hours": timedelta(days=1), "7 days": timedelta(days=7),
           "30 days": timedelta(days=30)}
BUCKETS = {"1 hour": "5min", "24 hours": "1h", "7 days": "6h", "30 days": "1D"}
PAGE_ROWS = 25


@st.cache_data(ttl=30, show_spinner="Reading the prediction log…")
def decisions(api: ApiClient, window: str, max_rows: int) -> pd.DataFrame:
    """Newest decisions of the window, cached 30 s per API and key so page views don't hammer the API."""
    return api.decisions(max_rows, since=datetime.now(timezone.utc) - WINDOWS[window])


@st.cache_data(ttl=30)
def threshold(api: ApiClient) -> float | None:
    try:
        return float(api.health()["threshold"])
    except ApiError:
        return None


def _log_section(api: ApiClient, window: str, max_rows: int) -> None:
    try:
        frame = decisions(api, window, max_rows)
    except ApiError as error:
        st.error(str(error))
        return
    if frame.empty:
        st.info(f"No decisions logged in the last {window}.")
        return
    approved = (frame["credit_decision"] == "approved").mean()
    a, b, c, d = st.columns(4)
    a.metric("Decisions", f"{len(frame):,}" + ("+" if len(frame) >= max_rows else ""))
    b.metric("Approval rate", f"{approved:.1%}")
    c.metric("Mean P(default)", f"{frame['probability_default'].mean():.3f}")
    d.metric("Latency p99", f"{frame['latency_ms'].quantile(0.99):.1f} ms")
    periods = charts.per_period(frame, BUCKETS[window])
    left, right = st.columns(2)
    left.plotly_chart(charts.volume(periods), width="stretch")
    right.plotly_chart(charts.approval_rate(periods), width="stretch")
    left, right = st.columns(2)
    cut = threshold(api) or float(frame["threshold"].iloc[0])
    left.plotly_chart(charts.probability_histogram(frame, cut), width="stretch")
    right.plotly_chart(charts.latency(periods), width="stretch")

    st.subheader("Latest decisions")
    pages = max(1, -(-len(frame) // PAGE_ROWS))
    page = st.number_input("page", min_value=1, max_value=pages, value=1, step=1)
    shown = frame.iloc[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
    st.dataframe(shown[["ts", "request_id", "credit_decision", "probability_default", "model_version",
                        "latency_ms"]], hide_index=True, width="stretch")


def _drift_section() -> None:
    st.subheader("Latest drift report")
    report = latest_report(settings().reports_dir)
    if report is None:
        st.info("No drift report yet: run `uv run python -m monitoring.drift_report`.")
        return
    window = report["window"]
    st.caption(f"Generated {report['generated_at']} over {window['rows']:,} decisions "
               f"({window['first_ts']} → {window['last_ts']}), baseline {report['reference']['model_version']}.")
    share = report["drift_share"]
    (st.error if report["drift_detected"] else st.success)(
        f"{report['drifted_count']} of {len(report['features'])} features drifted "
        f"(share {share:.0%}, alert above {report['max_drift_share']:.0%})")
    table = feature_table(report)
    st.dataframe(table.style.apply(
        lambda row: ["background-color: #fdecea" if row["drifted"] else ""] * len(row), axis=1),
        hide_index=True, width="stretch")


def render() -> None:
    st.title("Monitoring")
    api = signed_in_client()
    top = st.columns([2, 2, 1])
    window = top[0].selectbox("Window", list(WINDOWS), index=1)
    max_rows = top[1].select_slider("Decisions read (newest first)", [1000, 5000, 10000, 20000], value=5000)
    auto = top[2].toggle("Auto-refresh (30 s)")
    if top[2].button("Refresh now"):
        decisions.clear()

    @st.fragment(run_every=30 if auto else None)
    def live() -> None:
        _log_section(api, window, max_rows)

    live()
    _drift_section()


render()
