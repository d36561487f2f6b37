"""Plotly figures of the dashboard (pure functions of data, testable without Streamlit)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.decision import is_denied


def gauge(probability: float, threshold: float) -> go.Figure:
    """Default probability on a 0–100 % gauge, the decision threshold marked."""
    return go.Figure(go.Indicator(
        mode="gauge+number", value=probability * 100, number={"suffix": " %", "valueformat": ".2f"},
        title={"text": "Probability of default"},
        gauge={"axis": {"range": [0, 100]},
               "bar": {"color": "#c0392b" if is_denied(probability, threshold) else "#27ae60"},
               "steps": [{"range": [0, threshold * 100], "color": "#eafaf1"},
                         {"range": [threshold * 100, 100], "color": "#fdedec"}],
               "threshold": {"line": {"color": "black", "width": 3}, "value": threshold * 100}}))


def per_period(decisions: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Volume, approval rate and latency percentiles per time bucket."""
    grouped = decisions.set_index("ts").sort_index().groupby(pd.Grouper(freq=freq))
    frame = pd.DataFrame({
        "decisions": grouped.size(),
        "approval_rate": grouped["credit_decision"].apply(lambda d: (d == "approved").mean() if len(d) else None),
        "latency_p50_ms": grouped["latency_ms"].quantile(0.5),
        "latency_p99_ms": grouped["latency_ms"].quantile(0.99),
    })
    return frame[frame["decisions"] > 0].reset_index()


def volume(periods: pd.DataFrame) -> go.Figure:
    return go.Figure(go.Bar(x=periods["ts"], y=periods["decisions"]),
                     layout={"title": "Decisions over time", "yaxis_title": "decisions"})


def approval_rate(periods: pd.DataFrame) -> go.Figure:
    return go.Figure(go.Scatter(x=periods["ts"], y=periods["approval_rate"] * 100, mode="lines+markers"),
                     layout={"title": "Approval rate", "yaxis_title": "% approved", "yaxis_range": [0, 100]})


def latency(periods: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for column, name in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
        figure.add_trace(go.Scatter(x=periods["ts"], y=periods[column], mode="lines+markers", name=name))
    figure.update_layout(title="Server latency (ms)", yaxis_title="ms")
    return figure


def probability_histogram(decisions: pd.DataFrame, threshold: float) -> go.Figure:
    figure = go.Figure(go.Histogram(x=decisions["probability_default"], nbinsx=50))
    figure.add_vline(x=threshold, line_dash="dash", line_color="black", annotation_text=f"threshold {threshold:.3f}")
    figure.update_layout(title="Distribution of probability_default", xaxis_title="probability of default")
    return figure
