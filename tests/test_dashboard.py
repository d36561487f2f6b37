"""Dashboard pages with Streamlit's AppTest against the real API (file log)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.artifacts import resolve_model_dir
from core.features import FEATURES
from core.reference import reference_applicants
from core.schema import of_card
from core.settings import Settings
from models.baseline import load_baseline
from monitoring.drift_analysis import analyse
from monitoring.drift_report import write_report
from monitoring.log_window import read_window
from tests.support.dashboard_pages import page, refused
from tests.support.serving import RunningApp


@pytest.fixture
def dashboard_env(file_app: RunningApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings of the dashboard process: the running API, a reports folder — and ``API_KEY`` in its
    environment, which the dashboard must not use (a visitor signs in with their own key)."""
    reports = tmp_path / "reports"
    for name, value in {"API_URL": file_app.url, "API_KEY": file_app.api_key, "REPORTS_DIR": str(reports),
                        "DATA_DIR": str(file_app.data_dir)}.items():
        monkeypatch.setenv(name, value)
    yield reports


def test_scoring_page_offers_every_feature_of_the_served_card_within_its_range(dashboard_env: Path,
                                                                              file_app: RunningApp) -> None:
    at = page("scoring")
    assert not at.exception
    inputs = {w.label.split(" (")[0]: w for w in [*at.number_input, *at.slider]}
    card = httpx.get(f"{file_app.url}/model", timeout=10).json()
    schema = of_card(card)
    assert set(inputs) == set(schema.names) == {f.name for f in FEATURES}
    for feature in schema.features:
        widget = inputs[feature.name]
        assert widget.min >= feature.low and widget.max <= feature.high
        assert widget.value == pytest.approx(card["feature_profile"][feature.name]["q50"],
                                             abs=1e-3 if feature.kind == "number" else 1)


def test_submitted_prediction_shows_the_api_decision(dashboard_env: Path, file_app: RunningApp) -> None:
    at = page("scoring")
    at.button[0].click().run()
    assert not at.exception
    shown = (at.success or at.error)[0].value
    assert shown.startswith("Decision")
    inputs = {w.label.split(" (")[0]: w.value for w in [*at.number_input, *at.slider]}
    expected = httpx.post(f"{file_app.url}/predict", json=inputs).json()
    assert expected["credit_decision"].upper() in shown
    assert at.metric[0].value == f"{expected['probability_default']:.2%}"
    assert len(at.get("plotly_chart")) == 1
    explained = httpx.post(f"{file_app.url}/predict", params={"explain": "true"}, json=inputs).json()
    reasons = [r["text"] for r in explained["explanation"]["reasons"][:4]]
    shown_reasons = list(at.dataframe[-1].value["reason"]) if at.dataframe else []
    assert shown_reasons == reasons, "the page must show the reasons of the decision it made"


def test_api_error_is_a_message_not_a_traceback(dashboard_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9")
    at = page("scoring")
    at.button[0].click().run()
    assert not at.exception
    assert "API unreachable" in at.error[0].value


def test_monitoring_page_charts_the_log_and_the_latest_drift_report(
        dashboard_env: Path, file_app: RunningApp) -> None:
    before = file_app.stats()["records_in_store"]
    with httpx.Client(base_url=file_app.url, timeout=30) as client:
        for _ in range(2):   # more than the 5,000 newest rows the page reads: its counts must not stop there
            client.post("/predict/batch", json=[{f.name: f.example for f in FEATURES}] * 3_000).raise_for_status()
    logged = file_app.wait_logged(before + 6_000)["records_in_store"]
    window, _ = asyncio.run(read_window(Settings(data_dir=file_app.data_dir, database_url=None), None, None))
    analysis = analyse(window, load_baseline(resolve_model_dir(None)), None, None, 0.25)
    write_report(analysis, dashboard_env / "drift")

    at = page("monitoring", file_app.api_key)
    assert not at.exception
    assert [e.value for e in at.error if "API" in e.value] == []
    assert int(at.metric[0].value.replace(",", "")) == logged >= 6_000   # the true count of the 24 h window
    assert len(at.get("plotly_chart")) == 4
    drift_table = at.dataframe[-1].value
    assert list(drift_table["feature"]) == [f.name for f in FEATURES]
    assert f"{analysis.summary['drifted_count']} of 10 features drifted" in (at.success or at.error)[0].value


@pytest.mark.parametrize("name", ["monitoring", "performance"])
def test_log_pages_refuse_visitors_without_a_key(dashboard_env: Path, name: str) -> None:
    """``API_KEY`` is in the dashboard's environment: still nothing of the log without signing in."""
    at = page(name)
    assert refused(at), [i.value for i in at.info]
    at = page(name, "wrong-key")
    assert refused(at) and "401" in at.error[0].value


def test_a_key_signed_in_stays_for_the_session_and_signs_out(dashboard_env: Path, file_app: RunningApp) -> None:
    at = page("monitoring", file_app.api_key)
    assert not refused(at) and at.session_state["api_key"] == file_app.api_key
    at.run()
    assert not refused(at)
    at.sidebar.button[0].click().run()
    assert refused(at) and "api_key" not in at.session_state


def test_performance_page_shows_what_the_api_reports(dashboard_env: Path, file_app: RunningApp) -> None:
    logged = file_app.stats()["records_in_store"]
    with httpx.Client(base_url=file_app.url, timeout=30) as client:
        decided = client.post("/predict/batch", json=reference_applicants().head(400).to_dict("records")).json()
        file_app.wait_logged(logged + 400)
        outcomes = [{"request_id": d["request_id"], "defaulted": int(i % 9 == 0)}
                    for i, d in enumerate(decided["results"])]
        assert client.post("/outcomes", json=outcomes, headers=file_app.auth()).status_code == 200
        labelled = client.get("/performance", params={"by": "week"}, headers=file_app.auth()).json()["labelled"]
    at = page("performance", file_app.api_key)
    assert not at.exception
    assert [e.value for e in at.error] == []
    assert at.metric[0].value == f"{labelled:,}" and labelled >= 400
    assert len(at.get("plotly_chart")) == 4


def test_a_window_of_one_bucket_keeps_its_time_axis_at_the_buckets_unit() -> None:
    """One hour of decisions in hourly buckets: the axis spans three hours with a tick per hour (Plotly alone
    stretches one point into sub-millisecond ticks), and the bar is an hour wide, not the whole chart."""
    import pandas as pd

    from dashboard import charts

    hour = pd.Timedelta(1, unit="h")
    periods = pd.DataFrame({"ts": [pd.Timestamp("2026-12-05T06:00:00Z")], "decisions": [40], "approval_rate": [0.9]})
    figure = charts.volume(periods, hour)
    low, high = (pd.Timestamp(x) for x in figure.layout.xaxis.range)
    assert (low, high) == (pd.Timestamp("2026-12-05T05:00:00Z"), pd.Timestamp("2026-12-05T07:00:00Z"))
    assert figure.layout.xaxis.dtick == 3_600_000 and figure.data[0].width == 0.9 * 3_600_000
    assert charts.approval_rate(periods, hour).layout.xaxis.dtick == 3_600_000


def test_one_report_period_is_drawn_at_the_unit_of_days() -> None:
    import pandas as pd

    from dashboard import charts

    periods = pd.DataFrame({"period_start": ["2026-11-30"], "model_version": ["v"], "auc": [0.79],
                            "estimated": [{"auc": 0.8}]})
    figure = charts.realized_auc(periods, 0.789)
    assert [pd.Timestamp(x) for x in figure.layout.xaxis.range] == [pd.Timestamp("2026-11-29"),
                                                                    pd.Timestamp("2026-12-01")]
    assert figure.layout.xaxis.dtick == 86_400_000
