"""All configuration, typed, in one place.

* ``Settings`` — process environment (``DATABASE_URL``, ``API_KEY``, ``DATA_DIR``, ...).
* ``ScorerConfig`` / ``ChallengerConfig`` / ``IngressConfig`` / ``LogWriterConfig`` — each deployment's
  ``user_config`` in serve_config.yaml; a ``serve deploy`` of an edited file applies them
  to running replicas through ``reconfigure`` without a restart.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


SECRETS_DIR = os.environ.get("CREDIT_SECRETS_DIR") or None
"""A folder of secret files named after settings (``api_key``, ``database_url``; docker-compose.yml mounts
them at /run/secrets): read when the variable itself is unset, so no secret need be in the environment."""


class Settings(BaseSettings):
    """Environment of the process that starts Ray (inherited by every replica)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", secrets_dir=SECRETS_DIR)

    database_url: str | None = Field(None, description="PostgreSQL DSN; unset = JSONL file log")
    api_key: SecretStr | None = Field(
        None, description="Key with every scope (X-API-Key). Unset = a random key kept in DATA_DIR/api_key")
    api_keys: SecretStr | None = Field(
        None, description="More keys, each with its scopes: 'scope[+scope]:secret ...' (core.api_keys)")
    scoring_requires_key: bool = Field(False, description="/predict* answer 401 without a key with scope 'score'")
    data_dir: Path = Field(PROJECT_ROOT / "data", description="File log, spool and generated API key")
    max_body_bytes: int = Field(8 * 1024 * 1024, description="Larger request bodies get 413")
    max_reported_errors: int = Field(20, ge=1, description="A 422 lists at most this many validation errors; "
                                                           "validation of a list stops there")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Benchmark and drift reports")
    log_retention_days: int = Field(762, ge=1, description="Decisions older than this (in PostgreSQL with their "
                                                           "outcomes, groups and aggregates; the file log's whole "
                                                           "days) are archived to Parquet and deleted by "
                                                           "python -m prediction_log.retention; Regulation B keeps "
                                                           "adverse-action records 25 months (762 days)")
    api_url: str = Field("http://127.0.0.1:8000", description="Where tools (dashboard, load test) find the API")

    @field_validator("database_url", "api_key", "api_keys", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


class ScorerConfig(BaseModel):
    """Scorer deployment ``user_config``: the active model and its batching."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str = Field("latest", description="Version folder under models/, a path, or 'latest'")
    threshold: float | None = Field(None, gt=0, lt=1, description="Override of the model card's threshold")
    max_batch_size: int = Field(32, ge=1, description="Calls (each a block of rows) per ONNX run")
    batch_wait_timeout_s: float = Field(0.0, ge=0, description="Ingresses already batch: run what is queued")
    intra_op_threads: int = Field(1, ge=1, description="ONNX Runtime threads per run")
    require_monotonicity: bool = Field(True, description="Refuse a model whose card has no passing monotonicity "
                                                         "sweep (models.monotonicity): risk moving against the "
                                                         "credit policy's directions")
    reasons_for_denials: bool = Field(True, description="TreeSHAP principal reasons for every denied row, logged "
                                                        "with the decision (adverse-action notices); off only to "
                                                        "measure their cost")
    change_note: str | None = Field(None, max_length=500, description="Who asked for this change and why (a "
                                                                      "ticket, a name): kept with the change in "
                                                                      "the model-change audit record")


class ChallengerConfig(ScorerConfig):
    """``Challenger`` deployment ``user_config``: a second model beside the champion, and how it is used.

    ``disabled``: the deployment idles (no model loaded). ``shadow``: every block the champion scores is
    also scored by the challenger, off the response path; its probability and decision are logged beside
    the champion's. ``canary``: ``canary_percent`` of requests are answered by the challenger (by the
    ``X-Applicant-Key`` header when sent, so a repeated applicant always gets the same model). Edited by
    ``serve deploy``: applied in place, the ingresses follow within ``CHALLENGER_POLL_S``."""

    mode: Literal["disabled", "shadow", "canary"] = "disabled"
    model: str | None = Field(None, description="Version folder under models/ or a folder holding model.onnx "  # type: ignore[assignment]  # no challenger unless named
                                                "(then ``threshold`` is required)")
    canary_percent: float = Field(0.0, ge=0, le=100, description="canary: share of requests it answers")
    timeout_s: float = Field(1.0, gt=0, description="A challenger call slower than this is given up: the record "
                                                    "has no challenger columns (shadow) or the champion answers "
                                                    "(canary)")
    max_pending_blocks: int = Field(64, ge=1, description="Shadow calls one ingress replica keeps in flight; beyond "
                                                          "it blocks are logged without the challenger")

    @model_validator(mode="after")
    def _model_when_enabled(self) -> ChallengerConfig:
        if self.mode != "disabled" and not self.model:
            raise ValueError(f"mode {self.mode!r} needs a model")
        return self


KEY_RELOAD_S = 1.0
"""How often an ingress replica re-reads its API keys (``API_KEYS`` from the secrets folder can change)."""

CHALLENGER_POLL_S = 1.0
"""How often an ingress replica reads the challenger's mode (a handle call: nothing per request)."""

NODE_SPOOL_REPLAY_S = 5.0
"""How often an ingress on a node without the log writer replays that node's spool (``deployments.node_spool``)."""


class IngressConfig(BaseModel):
    """Ingress deployment ``user_config``: micro-batching, load shedding, log shipping and its bounds."""

    model_config = ConfigDict(extra="forbid")
    max_batch_size: int = Field(256, ge=1, description="Single-row requests carried by one scorer call")
    batch_wait_timeout_s: float = Field(0.002, ge=0)
    max_in_flight_requests: int = Field(
        1024, ge=1, description="Scoring requests one ingress replica holds at once; beyond it 503 + Retry-After "
                                "(direct ingress bypasses Serve's own max_ongoing/max_queued limits)")
    max_in_flight_body_bytes: int = Field(
        256 << 20, ge=1 << 20, description="Request-body bytes one ingress replica holds or parses at once, counted "
                                           "as they arrive; beyond it 503 + Retry-After (one body is always let in)")
    body_timeout_s: float = Field(10.0, gt=0, description="A request body not all received within this is answered "
                                                          "408 (a client trickling its body holds its slot no longer)")
    log_flush_interval_s: float = Field(0.05, gt=0, description="Decisions are handed to the log writer this often")
    log_flush_max_records: int = Field(2000, ge=1, le=10_000, description="... or when this many are buffered")
    log_flush_max_bytes: int = Field(2 << 20, ge=64 << 10, le=3 << 20,
                                     description="Arrow bytes per log-writer call at most (denials carry their "
                                                 "reasons; a call must stay under gRPC's 4 MiB message limit)")
    log_write_timeout_s: float = Field(1.0, gt=0, description="A log-writer call slower than this counts as failed "
                                                              "(the writer is away)")
    log_buffer_max_records: int = Field(
        2_000, ge=1, description="Decisions held in memory while the log writer fails or hangs; beyond it they "
                                 "are spilled to the local spool, and if the spool cannot take them scoring answers "
                                 "503 (the answered-but-not-durable window; a SIGKILL of the replica loses at most "
                                 "these)")
    log_buffer_max_age_s: float = Field(1.0, gt=0, le=60, description="... or held this long while the writer fails")
    log_buffer_max_bytes: int = Field(
        64 << 20, ge=1 << 20, description="... or this many bytes of them (explained decisions carry reason codes)")
    spool_quota_bytes: int = Field(1 << 30, ge=1 << 20, description="Disk this replica's spool may use; when it is "
                                                                    "full and the buffer too, scoring answers 503")
    rejections_per_s: float = Field(10.0, gt=0, description="Rejected keyless requests (401, 403, 415, 422) one "
                                                            "replica answers a second; past a second's worth at once, "
                                                            "each waits its turn (deployments.http.pacing)")
    rejection_delay_s: float = Field(1.0, ge=0, le=30, description="... and at least this long (no CPU: a client "
                                                                   "looping on bad input slows down)")
    max_delayed_rejections: int = Field(2048, ge=0, description="Answers waiting at once; beyond it they are sent "
                                                                "at once (each waiting one holds its request)")


class LogWriterConfig(BaseModel):
    """Log-writer deployment ``user_config``."""

    model_config = ConfigDict(extra="forbid")
    retry_interval_s: float = Field(2.0, gt=0, description="How often a down database is retried")
    replay_chunk_records: int = Field(5000, ge=1)
    statement_timeout_s: float = Field(3.0, gt=0, description="A database write slower than this is spooled")
    spool_quota_bytes: int = Field(1 << 30, ge=1 << 20, description="Disk the log writer's spool may use")
    write_connections: int = Field(4, ge=1, description="PostgreSQL connections for writes (COPY, merges, outcomes)")
    read_connections: int = Field(2, ge=1, description="PostgreSQL connections for reads, apart from the writes': "
                                                       "reads beyond them wait up to read_timeout_s, then 503")
    read_timeout_s: float = Field(30.0, gt=0, description="A read (page, report join) slower than this is a 503")
    file_reads: int = Field(2, ge=1, description="File log: reads scanning the file at once (appends have their "
                                                 "own thread, never behind a read)")
    monitoring_interval_s: float = Field(3600.0, gt=0, description="How often the log writer computes a monitoring "
                                                                   "run (feature PSI, realized AUC) into "
                                                                   "monitoring_runs and its gauges; first at start")
    monitoring_window_hours: float = Field(24.0, gt=0, description="The decisions a run's PSI describes (the last "
                                                                   "hours up to the run)")
    monitoring_sample_rows: int = Field(100_000, ge=1000, description="A run's PSI reads a uniform sample of this "
                                                                      "many decisions of its window at most")
    realized_window_days: float = Field(30.0, gt=0, description="A run's realized AUC: decisions of the last days "
                                                                "that have an outcome")


class PromotionGates(BaseSettings):
    """The gates ``python -m models.promote`` checks before a candidate replaces the champion (env ``PROMOTION_*``).
    Evidence is the shadowed decisions the candidate scored beside the champion (docs/model-risk.md)."""

    model_config = SettingsConfigDict(env_prefix="PROMOTION_", extra="ignore")
    window_days: float = Field(90.0, gt=0, le=92, description="Evidence from the shadowed decisions of the last days")
    min_labelled: int = Field(2000, ge=100, description="Labelled shadowed loans the realized comparison needs")
    min_shadowed: int = Field(20_000, ge=1000, description="Before outcomes: shadowed decisions the estimated "
                                                           "comparison needs")
    auc_margin: float = Field(0.01, ge=0, le=0.1, description="Non-inferiority: the lower bound of the paired AUC "
                                                              "difference (candidate - champion) must be above minus "
                                                              "this")
    estimated_auc_margin: float = Field(0.005, ge=0, le=0.1, description="Before outcomes: the candidate's "
                                                                         "estimated AUC at least the champion's "
                                                                         "minus this")
    cost_margin_per_loan: float = Field(0.0, ge=0, description="Cost not worse: the lower bound of the paired cost "
                                                               "difference per loan (or the estimated one) at most "
                                                               "this")
    min_adverse_impact_ratio: float = Field(0.8, gt=0, le=1, description="Every judged group's approval rate over "
                                                                         "the most favoured group's, on the same "
                                                                         "applicants")
    min_group_decisions: int = Field(100, ge=1, description="Groups with fewer shadowed decisions are not judged")
    max_calibration_error: float = Field(0.03, gt=0, le=0.5, description="Calibration: mean |predicted - observed| "
                                                                         "default rate over deciles of labelled "
                                                                         "loans (before outcomes: the estimated "
                                                                         "default rate's distance from the "
                                                                         "champion's)")


class DeploymentOptions(BaseModel):
    """Serve options of one deployment (``serve_config.yaml`` may override each, per deployment)."""

    model_config = ConfigDict(extra="forbid")
    num_replicas: int = 1
    max_ongoing_requests: int = 5
    max_queued_requests: int = -1
    graceful_shutdown_timeout_s: float = 20.0
    ray_actor_options: dict[str, Any] = Field(default_factory=lambda: {"num_cpus": 0})


HEAD_NODE_RESOURCE = "node:__internal_head__"
"""Ray gives the head node this resource; the log writer is pinned to it (file log and spool are its disk)."""

DEPLOYMENT_DEFAULTS: dict[str, DeploymentOptions] = {
    "Ingress": DeploymentOptions(num_replicas=2, max_ongoing_requests=1024, max_queued_requests=4096,
                                 graceful_shutdown_timeout_s=12),
    # above the scorer's max_batch_size, or it caps every batch
    "Scorer": DeploymentOptions(num_replicas=1, max_ongoing_requests=128, graceful_shutdown_timeout_s=5),
    # flushes from every ingress plus /predictions reads; Serve's default of 5 would queue reads behind flushes
    "Challenger": DeploymentOptions(num_replicas=1, max_ongoing_requests=128, graceful_shutdown_timeout_s=5),
    "LogWriter": DeploymentOptions(num_replicas=1, max_ongoing_requests=64, graceful_shutdown_timeout_s=10,
                                   ray_actor_options={"num_cpus": 0, "resources": {HEAD_NODE_RESOURCE: 0.001}}),
}
"""Defaults of every deployment's Serve options. The shutdown timeouts add up to less than the 30 s
Serve's controller gives a whole application: ingress (ships its buffer), then log writer."""

ARG_NAMES: dict[str, str] = {"ingress": "Ingress", "scorer": "Scorer", "challenger": "Challenger",
                             "log_writer": "LogWriter"}
"""``build_app`` argument (and test override) names → deployment names."""
USER_CONFIGS: dict[str, type[BaseModel]] = {"Ingress": IngressConfig, "Scorer": ScorerConfig,
                                            "Challenger": ChallengerConfig, "LogWriter": LogWriterConfig}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


def describe() -> str:
    """Every setting with its default and meaning, as a Markdown table (``python -m core.settings``)."""
    lines = ["| where | setting | default | meaning |", "|---|---|---|---|"]
    sections: list[tuple[str, type[BaseModel]]] = [("environment", Settings),
                                                   *((f"{n} user_config", c) for n, c in USER_CONFIGS.items()),
                                                   ("environment (models.promote)", PromotionGates)]
    for where, model in sections:
        for name, field in model.model_fields.items():
            shown = f"{model.model_config.get('env_prefix', '')}{name}".upper() if issubclass(model, BaseSettings) \
                else name
            default = "unset" if field.default is None else field.default
            lines.append(f"| {where} | `{shown}` | {default} | {field.description or ''} |")
    for name, options in DEPLOYMENT_DEFAULTS.items():
        lines.append(f"| {name} options | | {options.model_dump()} | Serve deployment options |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe())
