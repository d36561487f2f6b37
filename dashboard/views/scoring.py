"""Scoring page: the served model's features as inputs (its card's schema), the API's decision with a gauge."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from core.schema import DEFAULT_SCHEMA, FeatureSpec, ModelSchema, of_card
from dashboard import charts
from dashboard.api_client import ApiError
from dashboard.context import client


def _served_schema() -> tuple[ModelSchema, dict[str, Any]]:
    """The served model's schema and training profile, from its card; the default model's when the API cannot say
    (the error is shown, and scoring reports it again)."""
    try:
        card = client().model_card()
    except ApiError as error:
        st.error(str(error))
        return DEFAULT_SCHEMA, {}
    return of_card(card), card.get("feature_profile") or {}


def _default(feature: FeatureSpec, profile: dict[str, Any]) -> Any:
    """The training median of a number, the most frequent level of a category (the card's profile)."""
    seen = profile.get(feature.name) or {}
    if feature.kind == "category":
        return max(feature.levels, key=lambda level: seen.get(level, 0.0))
    if "q50" in seen:
        return seen["q50"]
    return feature.example if isinstance(feature.example, (int, float)) else max(feature.low, 0.0)


def _input(feature: FeatureSpec, default: Any) -> Any:
    label = f"{feature.name} ({feature.unit})" if feature.unit else feature.name
    help_text = f"{feature.description} {feature.range_text}".strip()
    if feature.kind == "category":
        return st.selectbox(label, feature.levels, index=feature.levels.index(default), help=help_text)
    low = feature.low if math.isfinite(feature.low) else None
    high = feature.high if math.isfinite(feature.high) else None
    if feature.kind == "integer":
        return st.number_input(label, min_value=None if low is None else int(low) + (0 if feature.low_inclusive else 1),
                               max_value=None if high is None else int(high) - (0 if feature.high_inclusive else 1),
                               value=int(round(default)), step=1, help=help_text)
    if low is not None and high is not None and high - low <= 3:
        return st.slider(label, min_value=float(low), max_value=float(high), value=float(default), step=0.001,
                         format="%.3f", help=help_text)
    return st.number_input(label, min_value=float(low) if low is not None else None,
                           max_value=float(high) if high is not None else None, value=float(default), help=help_text)


def render() -> None:
    st.title("Score an applicant")
    schema, profile = _served_schema()
    with st.form("applicant"):
        columns = st.columns(2)
        applicant = {}
        for i, feature in enumerate(schema.features):
            with columns[i % 2]:
                applicant[feature.name] = _input(feature, _default(feature, profile))
        submitted = st.form_submit_button("Score", type="primary")
    if not submitted:
        st.caption("Defaults are the training medians (and most frequent levels) on the served model's card.")
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
