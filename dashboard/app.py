"""Credit-scoring dashboard: ``streamlit run dashboard/app.py``.

Reads ``API_URL`` and ``REPORTS_DIR`` from the settings; every number comes from the HTTP API or the
latest drift report file. The log pages ask the visitor for an API key (``dashboard.context``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Credit scoring", page_icon="💳", layout="wide")
page = st.navigation([st.Page(VIEWS / "scoring.py", title="Scoring", default=True),
                      st.Page(VIEWS / "monitoring.py", title="Monitoring", url_path="monitoring"),
                      st.Page(VIEWS / "performance.py", title="Performance", url_path="performance")])
page.run()
