"""End to end in headless Chromium: the dashboard against the running API, screenshots kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from core.ports import free_port
from core.settings import PROJECT_ROOT
from tests.support.serving import RunningApp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def dashboard_url(file_app: RunningApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run dashboard/app.py`` against the test API, on a free port."""
    port = free_port()
    env = {**os.environ, "API_URL": file_app.url, "API_KEY": file_app.api_key, "DATA_DIR": str(file_app.data_dir),
           "REPORTS_DIR": str(tmp_path_factory.mktemp("reports"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "streamlit did not start"
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(30)


def test_score_an_applicant_then_see_the_monitoring_charts(dashboard_url: str, file_app: RunningApp) -> None:
    api_key = file_app.api_key
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(dashboard_url)
        expect(page.get_by_text("Score an applicant")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Score", exact=True).click()
        expect(page.get_by_text("Decision:")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Probability of default").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard-scoring.png"), full_page=True)

        # Through the navigation (one Streamlit session): the log pages ask for a key first.
        page.get_by_role("link", name="Monitoring").click()
        expect(page.get_by_text("sign in with an API key")).to_be_visible(timeout=60_000)
        assert page.locator(".js-plotly-plot").count() == 0
        page.get_by_label("API key").fill("wrong-key")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("API answered 401")).to_be_visible(timeout=60_000)
        page.get_by_label("API key").fill(api_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Decisions over time")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Approval rate").first).to_be_visible()
        # Streamlit draws the charts one after another: wait for all four (the last needs the newest decisions)
        expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=60_000)
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard-monitoring.png"), full_page=True)
        # What a lender's analyst must not see: Streamlit's Deploy button, a developer's docstring above the
        # title, time ticks finer than the buckets (this window's decisions fall in one hour)
        assert page.get_by_role("button", name="Deploy").count() == 0
        assert page.get_by_text("bucket per window").count() == 0
        ticks = page.locator(".js-plotly-plot").first.locator(".xtick text").all_text_contents()
        assert ticks and not any(re.search(r"\d:\d\d\.\d", t) for t in ticks), ticks

        page.get_by_role("link", name="Performance").click()   # still signed in
        expect(page.get_by_text("Realized performance")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Champion vs challenger").or_(page.get_by_text("No decisions with outcomes"))
               .first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-performance.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "dashboard-scoring.png").stat().st_size > 10_000
