"""The shapes of the keyed routes' answers (their ``response_model``): the OpenAPI document shows each, and the
contract tests validate what the routes answer against them. Deep report figures stay mappings, described here,
computed in ``models``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from core.features import FEATURES
from deployments.monitoring_run import MonitoringRun
from prediction_log.model_changes import ModelChange

Figures = dict[str, Any]
"""Realized figures of a group of labelled decisions (``models.performance.realized``): labelled, defaults, AUC and
its resolution, Brier score, cost, default and approval rates; ``expected`` the model card's."""

LogRecord = create_model(  # type: ignore[call-overload]  # fields by name, from the features
    "LogRecord",
    __doc__="One decision as the prediction log holds it: the request, the applicant's features, the score, the "
            "decision and the threshold it was taken at, its reasons (denials), the shadow challenger's score.",
    request_id=(str, ...), ts=(datetime, ...), endpoint=(str, ...), model_version=(str, ...),
    **{f.name: (int if f.dtype == "int" else float, ...) for f in FEATURES},
    probability_default=(float, ...), prediction=(int, ...), credit_decision=(str, ...), threshold=(float, ...),
    latency_ms=(float, ...), explanation=(dict[str, Any] | None, None), challenger_version=(str | None, None),
    challenger_probability=(float | None, None), challenger_decision=(str | None, None),
)


class LogPage(BaseModel):
    limit: int
    offset: int
    count: int
    items: list[LogRecord]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class LogStats(BaseModel):
    backend: str = Field(description="postgresql or file")
    store_up: bool
    records_in_store: int | None
    spool_records: int
    written: int
    spooled: int
    replayed: int
    rejected: int
    buffered_in_this_ingress: int
    log_state: str
    unreadable_lines: dict[str, int] = Field(description="Lines of the file log and the files beside it that could "
                                                        "not be read (a crash cut an append short), per file")


class Counts(BaseModel):
    decisions: int
    approved: int


class Histogram(BaseModel):
    bin_width: float
    counts: list[int]


class SeriesPoint(Counts):
    bucket: str


class Summary(BaseModel):
    since: datetime | None
    until: datetime | None
    bucket: str
    decisions: int
    approved: int
    denied: int
    approval_rate: float | None
    latency_ms_mean: float | None
    latency_ms_max: float | None
    by_endpoint: dict[str, int] = Field(description="Decisions per endpoint (predict, batch)")
    by_model_version: dict[str, Counts]
    probability_histogram: Histogram
    series: list[SeriesPoint]
    latency_ms_quantiles: dict[str, float | None]


class ModelChanges(BaseModel):
    items: list[ModelChange]


class MonitoringRuns(BaseModel):
    items: list[MonitoringRun]


class PeriodFigures(BaseModel):
    model_config = ConfigDict(extra="allow")   # the period's ``Figures``
    period_start: str
    model_version: str


class Performance(BaseModel):
    since: datetime | None
    until: datetime | None
    model_version: str | None
    by: str = Field(description="day or week")
    labelled: int
    model_versions: dict[str, Figures]
    periods: list[PeriodFigures]


class ChallengerComparison(BaseModel):
    since: datetime | None
    until: datetime | None
    shadowed: int
    pairs: list[dict[str, Any]] = Field(description="Per (champion, challenger) pair: decisions, agreement, approval "
                                                    "rates, confusion, score correlation and scatter, and ``Figures`` "
                                                    "of each on the labelled decisions")


class Fairness(BaseModel):
    since: datetime | None
    until: datetime | None
    decisions: int
    min_ratio: float
    min_decisions: int
    attributes: dict[str, Any] = Field(description="Per attribute and group: decisions, approval rate, adverse-impact "
                                                   "ratio, error rates, AUC and calibration")
    alerts: list[Any]


ModelCard = dict[str, Any]
"""The active model card (``models/<version>/model_card.json``) with ``threshold_in_force``."""
