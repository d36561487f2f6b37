"""The dashboard's disparate-impact section: approval rate and adverse-impact ratio per group (``GET /fairness``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.api_client import ApiClient, ApiError


@st.cache_data(ttl=60, show_spinner="Joining decisions with group membership…")
def report(api: ApiClient, days: int) -> dict[str, Any]:
    return api.fairness(datetime.now(UTC) - timedelta(days=days))


def fairness_section(api: ApiClient, days: int) -> None:
    st.subheader("Fairness: approval by group")
    try:
        figures = report(api, days)
    except ApiError as error:
        st.info(f"{error} — sign in with a key holding the scope `fairness` to see disparate impact.")
        return
    for alert in figures["alerts"]:
        st.error(f"{alert['attribute']} = {alert['group']}: adverse-impact ratio {alert['adverse_impact_ratio']:.3f} "
                 f"< {figures['min_ratio']} (approval {alert['approval_rate']:.1%}, {alert['decisions']:,} decisions)")
    rows = [{"attribute": attribute, "group": group, **values}
            for attribute, block in figures["attributes"].items() for group, values in block["groups"].items()]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Adverse-impact ratio: a group's approval rate over the most-favoured group's (four-fifths rule). "
               "Age bands come from the features (only the 62-and-over band is judged: Regulation B lets an "
               "empirically derived system use age if it never disfavours the elderly); other attributes from "
               "`POST /groups`.")
