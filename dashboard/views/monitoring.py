"""Monitoring page: the window's true counts (the log's aggregates), its newest decisions, the latest drift report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.api_client import ApiClient, ApiError
from dashboard.context import settings, signed_in_client
from dashboard.drift import feature_table, latest_report

WINDOWS = {"1 hour": timedelta(hours=1), "24 hours": timedelta(days=1), "7 days": timedelta(days=7),
           "30 days": timedelta(days=30)}
# The aggregates' bucket per window (GET /predictions/summary).
BUCKETS = {"1 hour": "minute", "24 hours": "hour", "7 days": "hour", "30 days": "hour"}
LATENCY_BUCKETS = {"1 hour": "5min", "24 hours": "1h", "7 days": "6h", "30 days": "1D"}
PAGE_ROWS = 25


@st.cache_data(ttl=30, show_spinner="Reading the prediction log…")
def decisions(api: ApiClient, window: str, max_rows: int) -> pd.DataFrame:
    """Newest decisions of the window, cached 30 s per API and key so page views don't hammer the API."""
    return api.decisions(max_rows, since=datetime.now(UTC) - WINDOWS[window])


@st.cache_data(ttl=30, show_spinner="Counting the window…")
def window_summary(api: ApiClient, window: str) -> dict:
    """Every decision of the window counted, from the aggregates: cost by buckets, not by decisions."""
    return api.summary(datetime.now(UTC) - WINDOWS[window], BUCKETS[window])


@st.cache_data(ttl=30)
def threshold(api: ApiClient) -> float | None:
    try:
        return float(api.health()["threshold"])
    except ApiError:
        return None


def _log_section(api: ApiClient, window: str, max_rows: int) -> None:
    try:
        summary = window_summary(api, window)
        frame = decisions(api, window, max_rows)
    except ApiError as error:
        st.error(str(error))
        return
    if not summary["decisions"]:
        st.info(f"No decisions logged in the last {window}.")
        return
    a, b, c, d = st.columns(4)
    a.metric("Decisions", f"{summary['decisions']:,}")
    b.metric("Approval rate", f"{summary['approval_rate']:.1%}")
    c.metric("Mean latency", f"{summary['latency_ms_mean']:.1f} ms")
    p99 = summary["latency_ms_quantiles"]["p99"]
    d.metric("Latency p99", "—" if p99 is None else f"≤ {p99:.1f} ms",
             help="Every decision of the window, from the log's latency histogram "
                  "(bins 10 % wide; PostgreSQL: whole hours)")
    periods, bucket = charts.summary_periods(summary), pd.Timedelta(1, unit="min" if summary["bucket"] == "minute"
                                                                    else "h")
    left, right = st.columns(2)
    left.plotly_chart(charts.volume(periods, bucket), width="stretch")
    right.plotly_chart(charts.approval_rate(periods, bucket), width="stretch")
    left, right = st.columns(2)
    cut = threshold(api) or (float(frame["threshold"].iloc[0]) if not frame.empty else 0.5)
    left.plotly_chart(charts.binned_histogram(summary["probability_histogram"], cut), width="stretch")
    if frame.empty:
        return
    latency_bucket = LATENCY_BUCKETS[window]
    right.plotly_chart(charts.latency(charts.per_period(frame, latency_bucket), pd.Timedelta(latency_bucket)),
                       width="stretch")
    right.caption(f"Latency percentiles of the newest {len(frame):,} decisions read.")

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
        window_summary.clear()

    @st.fragment(run_every=30 if auto else None)
    def live() -> None:
        _log_section(api, window, max_rows)

    live()
    _drift_section()


render()
