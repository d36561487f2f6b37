"""The dashboard's sign-in, fast: the real pages (AppTest) against the real routes served over HTTP by
uvicorn in this process on the in-process backend (no Ray)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from streamlit.testing.v1 import AppTest

from core.ports import free_port
from deployments.http.app import create_app
from tests.support.dashboard_pages import page, refused
from tests.support.in_process import InProcessBackend

FULL = "full-key-0123456789"
OUTCOMES_ONLY = "feeder-key-0123456789"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over real HTTP (uvicorn), as the dashboard reaches it."""
    backend = InProcessBackend(tmp_path_factory.mktemp("data"), FULL, f"outcomes:{OUTCOMES_ONLY}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(backend), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def dashboard_env(api_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``API_KEY`` set in the dashboard's environment on purpose: it must not open the log pages."""
    for name, value in {"API_URL": api_url, "API_KEY": FULL, "REPORTS_DIR": str(tmp_path),
                        "DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)


def _page(name: str, key: str | None = None) -> AppTest:
    """Pages served by the in-process API answer fast: a shorter wait than the served tests'."""
    return page(name, key, timeout_s=30)


@pytest.mark.parametrize("name", ["monitoring", "performance"])
def test_log_pages_ask_for_a_key_and_show_nothing_without(dashboard_env: None, name: str) -> None:
    assert refused(_page(name))


@pytest.mark.parametrize("key, status", [("wrong-key", "401"), (OUTCOMES_ONLY, "403")])
def test_a_wrong_or_out_of_scope_key_isrefused(dashboard_env: None, key: str, status: str) -> None:
    at = _page("monitoring", key)
    assert refused(at) and status in at.error[0].value and "api_key" not in at.session_state


@pytest.mark.parametrize("name", ["monitoring", "performance"])
def test_signed_in_the_page_reads_the_log_until_signed_out(dashboard_env: None, name: str) -> None:
    at = _page(name, FULL)
    assert not at.exception and not at.text_input, "signed in: no sign-in form"
    assert at.session_state["api_key"] == FULL
    assert [e.value for e in at.error] == []
    at.sidebar.button[0].click().run()
    assert refused(at) and "api_key" not in at.session_state


def test_scoring_page_needs_no_key(dashboard_env: None) -> None:
    at = _page("scoring")
    at.button[0].click().run()
    assert not at.exception
    assert (at.success or at.error)[0].value.startswith("Decision")
