"""Settings-derived objects shared by the pages, and the sign-in that guards the log pages.

The dashboard holds no key of its own: a visitor proves who they are by entering an API key with the
scope ``read``, kept only in their Streamlit session (server memory, gone when the tab closes). The
scoring page needs no key unless the server requires one for scoring.
"""

from __future__ import annotations

import streamlit as st

from core.settings import Settings
from dashboard.api_client import ApiClient, ApiError

SESSION_KEY = "api_key"


def settings() -> Settings:
    """Read on every run (cheap), so a changed environment is picked up."""
    return Settings()


def client() -> ApiClient:
    """The API client for ``API_URL``, with the visitor's key if they signed in."""
    return ApiClient(settings().api_url, st.session_state.get(SESSION_KEY))


def signed_in_client() -> ApiClient:
    """The client of a signed-in visitor; otherwise a sign-in form, and the page stops here."""
    if st.session_state.get(SESSION_KEY):
        if st.sidebar.button("Sign out"):
            del st.session_state[SESSION_KEY]
            st.rerun()
        return client()
    st.info("The prediction log holds personal data: sign in with an API key that may read it (scope `read`).")
    with st.form("sign_in"):
        key = st.text_input("API key", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted and key:
        candidate = ApiClient(settings().api_url, key)
        try:
            candidate.check_read_access()
        except ApiError as error:
            st.error(str(error))
        else:
            st.session_state[SESSION_KEY] = key
            st.rerun()
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the run")
