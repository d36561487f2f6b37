"""The dashboard's pages as a visitor meets them (Streamlit's AppTest), for the fast and the served tests."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT

VIEWS = PROJECT_ROOT / "dashboard" / "views"


def page(name: str, key: str | None = None, timeout_s: float = 60) -> AppTest:
    """The page as a visitor sees it first; with ``key``, after signing in with it through the form."""
    at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=timeout_s).run()
    if key is not None:
        at.text_input[0].input(key)
        at.button[0].click().run()
    return at


def refused(at: AppTest) -> bool:
    """The log page shows its sign-in form and none of the log."""
    return not at.exception and [t.label for t in at.text_input] == ["API key"] and not at.metric \
        and not at.get("plotly_chart") and not at.dataframe
