"""Scoring page: the ten features as inputs, the API's decision with a gauge."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.features import FEATURES
from core.reference import reference_applicants
from dashboard import charts
from dashboard.api_client import ApiError
from dashboard.context import client


@st.cache_data
def defaults() -> dict[str, float]:
    """Medians of the active model's reference sample."""
    return {str(k): float(v) for k, v in reference_applicants().median().items()}


def _input(feature, default: float) -> float | int:
    low = feature.low if feature.low_inclusive else None
    if feature.dtype == "int":
        high = int(feature.high) - (0 if feature.high_inclusive else 1)
        return st.number_input(f"{feature.name} ({feature.unit})", min_value=int(feature.low), max_value=high,
                               value=int(round(default)), step=1, help=f"{feature.description} {feature.range_text}")
    if feature.high <= 3:
        return st.slider(
            f"{feature.name} ({feature.unit})",
            min_value=float(feature.low),
            max_value=float(feature.high),
            value=float(default),
            step=0.001,
            format="%.3f",
            help=f"{feature.description} {feature.range_text}",
        )
    return st.number_input(
        f"{feature.name} ({feature.unit})",
        min_value=float(low) if low is not None else 0.0,
        max_value=float(feature.high),
        value=float(default),
        help=f"{feature.description} {feature.range_text}",
    )


def render() -> None:
    st.title("Score an applicant")
    medians = defaults()
    with st.form("applicant"):
        columns = st.columns(2)
        applicant = {}
        for i, feature in enumerate(FEATURES):
            with columns[i % 2]:
                applicant[feature.name] = _input(feature, medians[feature.name])
        submitted = st.form_submit_button("Score", type="primary")
    if not submitted:
        st.caption("Defaults are the medians of the model's reference sample.")
        return
    try:
        answer = client().predict(applicant, explain=True)
    except ApiError as error:
        st.error(str(error))
        return
    left, right = st.columns([1, 1])
    with left:
        decision = answer["credit_decision"]
        (st.success if decision == "approved" else st.error)(f"Decision: **{decision.upper()}**")
        st.metric("Probability of default", f"{answer['probability_default']:.2%}")
        st.write(
            pd.DataFrame(
                {
                    "": ["threshold", "request id", "model version"],
                    "value": [f"{answer['threshold']:.4f}", answer["request_id"], answer["model_version"]],
                }
            ).set_index("")
        )
    with right:
        st.plotly_chart(charts.gauge(answer["probability_default"], answer["threshold"]), width="stretch")
    _reasons(answer.get("explanation"), decision)


def _reasons(explanation: dict | None, decision: str) -> None:
    """The principal reasons (features that raise the risk): what a denied applicant is owed."""
    if not explanation:
        return
    st.subheader("Principal reasons" if decision == "denied" else "What raises the risk")
    reasons = explanation["reasons"][:4]
    if not reasons:
        st.write("No feature raises the risk above the base rate.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {"reason": r["text"], "feature": r["feature"], "contribution (log-odds)": round(r["contribution"], 3)}
                for r in reasons
            ]
        ),
        hide_index=True,
        width="stretch",
    )


render()
