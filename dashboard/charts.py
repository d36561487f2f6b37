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


def summary_periods(summary: dict) -> pd.DataFrame:
    """Volume and approval rate per bucket from ``GET /predictions/summary`` (every decision of the window)."""
    frame = pd.DataFrame(summary["series"], columns=["bucket", "decisions", "approved"])
    frame["ts"] = pd.to_datetime(frame["bucket"], utc=True, format="ISO8601")
    frame["approval_rate"] = frame["approved"] / frame["decisions"]
    return frame


def binned_histogram(histogram: dict, threshold: float) -> go.Figure:
    """The window's score histogram as the aggregates keep it (equal bins of [0, 1])."""
    width, counts = histogram["bin_width"], histogram["counts"]
    figure = go.Figure(go.Bar(x=[(i + 0.5) * width for i in range(len(counts))], y=counts, width=width))
    figure.add_vline(x=threshold, line_dash="dash", line_color="black", annotation_text=f"threshold {threshold:.3f}")
    figure.update_layout(title="Distribution of probability_default", xaxis_title="probability of default",
                         yaxis_title="decisions", bargap=0)
    return figure


MAX_BUCKET_TICKS = 12
"""Up to this many buckets on the axis, one tick per bucket; past it Plotly chooses."""


def time_axis(figure: go.Figure, times: pd.Series, bucket: pd.Timedelta) -> go.Figure:
    """A time axis at the buckets' unit: one bucket before the first and after the last, so a window of one or two
    buckets is not stretched into sub-millisecond ticks with one bar across the whole chart."""
    if times.empty:
        return figure
    low, high = times.min() - bucket, times.max() + bucket
    ticks = {"dtick": bucket.total_seconds() * 1000} if (high - low) / bucket <= MAX_BUCKET_TICKS else {}
    figure.update_xaxes(range=[low, high], **ticks)
    return figure


def period_axis(figure: go.Figure, starts: pd.Series) -> go.Figure:
    """``time_axis`` for report periods (days or weeks: the smallest step between them, a day when there is one)."""
    times = pd.Series(pd.to_datetime(starts.unique()) if len(starts) else [], dtype="datetime64[ns]").sort_values()
    steps = times.diff().dropna()
    return time_axis(figure, times, steps.min() if len(steps) else pd.Timedelta(1, unit="D"))


def volume(periods: pd.DataFrame, bucket: pd.Timedelta) -> go.Figure:
    figure = go.Figure(go.Bar(x=periods["ts"], y=periods["decisions"], width=bucket.total_seconds() * 1000 * 0.9),
                       layout={"title": "Decisions over time", "yaxis_title": "decisions"})
    return time_axis(figure, periods["ts"], bucket)


def approval_rate(periods: pd.DataFrame, bucket: pd.Timedelta) -> go.Figure:
    figure = go.Figure(go.Scatter(x=periods["ts"], y=periods["approval_rate"] * 100, mode="lines+markers"),
                       layout={"title": "Approval rate", "yaxis_title": "% approved", "yaxis_range": [0, 103]})
    return time_axis(figure, periods["ts"], bucket)


def latency(periods: pd.DataFrame, bucket: pd.Timedelta) -> go.Figure:
    figure = go.Figure()
    for column, name in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
        figure.add_trace(go.Scatter(x=periods["ts"], y=periods[column], mode="lines+markers", name=name))
    figure.update_layout(title="Server latency (ms)", yaxis_title="ms")
    return time_axis(figure, periods["ts"], bucket)


def realized_auc(periods: pd.DataFrame, card_auc: float | None) -> go.Figure:
    """Realized AUC per period and model version, the model card's holdout AUC as a line."""
    figure = go.Figure()
    for version, rows in periods.groupby("model_version"):
        figure.add_trace(go.Scatter(x=rows["period_start"], y=rows["auc"], mode="lines+markers",
                                    name=f"{version} realized"))
        if "estimated" in rows:
            estimate = [e["auc"] if isinstance(e, dict) else None for e in rows["estimated"]]
            figure.add_trace(go.Scatter(x=rows["period_start"], y=estimate, mode="lines+markers",
                                        line={"dash": "dot"}, name=f"{version} estimated (CBPE)"))
    if card_auc is not None:
        figure.add_hline(y=card_auc, line_dash="dash", annotation_text=f"model card {card_auc:.3f}")
    figure.update_layout(title="AUC: realized, and estimated before outcomes", yaxis_title="AUC")
    return period_axis(figure, periods["period_start"])


def default_rate(periods: pd.DataFrame, card_rate: float | None) -> go.Figure:
    """Observed vs predicted default rate per period."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=periods["period_start"], y=periods["default_rate"] * 100, mode="lines+markers",
                                name="observed"))
    figure.add_trace(go.Scatter(x=periods["period_start"], y=periods["mean_probability"] * 100,
                                mode="lines+markers", name="predicted"))
    if card_rate is not None:
        figure.add_hline(y=card_rate * 100, line_dash="dash", annotation_text="model card")
    figure.update_layout(title="Default rate", yaxis_title="%")
    return period_axis(figure, periods["period_start"])


def calibration(table: list[dict]) -> go.Figure:
    """Observed vs predicted default rate per decile of probability; the diagonal is perfect calibration."""
    frame = pd.DataFrame(table)
    top = float(max(frame["predicted_default_rate"].max(), frame["observed_default_rate"].max())) * 100
    figure = go.Figure(go.Scatter(x=frame["predicted_default_rate"] * 100, y=frame["observed_default_rate"] * 100,
                                  mode="lines+markers", name="deciles"))
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"dash": "dash"}, name="perfect"))
    figure.update_layout(title="Calibration", xaxis_title="predicted default rate %",
                         yaxis_title="observed default rate %")
    return figure


def cost_per_decision(periods: pd.DataFrame, card_cost: float | None) -> go.Figure:
    figure = go.Figure(go.Bar(x=periods["period_start"], y=periods["cost_per_decision"], name="realized"))
    if card_cost is not None:
        figure.add_hline(y=card_cost, line_dash="dash", annotation_text="model card")
    figure.update_layout(title="Cost per decision (10·FN + 1·FP)", yaxis_title="cost")
    return period_axis(figure, periods["period_start"])


def challenger_scatter(scatter: dict[str, list[float]], champion: str, challenger: str) -> go.Figure:
    """Each model's probability for the same decisions (a sample); the diagonal is agreement."""
    figure = go.Figure(go.Scattergl(x=scatter["champion"], y=scatter["challenger"], mode="markers",
                                    marker={"size": 4, "opacity": 0.5}, name="decisions"))
    top = max([*scatter["champion"], *scatter["challenger"], 0.01])
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"dash": "dash"}, name="equal"))
    figure.update_layout(title="Probability of default: champion vs challenger", xaxis_title=champion,
                         yaxis_title=challenger)
    return figure
