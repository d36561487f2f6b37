"""All configuration, typed, in one place.

* ``Settings`` — process environment (``DATABASE_URL``, ``API_KEY``, ``DATA_DIR``, ...).
* ``ScorerConfig`` / ``IngressConfig`` / ``LogWriterConfig`` — each deployment's
  ``user_config`` in serve_config.yaml; a ``serve deploy`` of an edited file applies them
  to running replicas through ``reconfigure`` without a restart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Environment of the process that starts Ray (inherited by every replica)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str | None = Field(None, description="PostgreSQL DSN; unset = JSONL file log")
    api_key: SecretStr | None = Field(
        None, description="Key for /predictions (X-API-Key). Unset = a random key kept in DATA_DIR/api_key")
    data_dir: Path = Field(PROJECT_ROOT / "data", description="File log, spool and generated API key")
    max_body_bytes: int = Field(8 * 1024 * 1024, description="Larger request bodies get 413")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Benchmark and drift reports")
    api_url: str = Field("http://127.0.0.1:8000", description="Where tools (dashboard, load test) find the API")

    @field_validator("database_url", "api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


class ScorerConfig(BaseModel):
    """Scorer deployment ``user_config``: the active model and its batching."""

    model: str = Field("latest", description="Version folder under models/, a path, or 'latest'")
    threshold: float | None = Field(None, gt=0, lt=1, description="Override of the model card's threshold")
    max_batch_size: int = Field(32, ge=1, description="Calls (each a block of rows) per ONNX run")
    batch_wait_timeout_s: float = Field(0.0, ge=0)
    intra_op_threads: int = Field(1, ge=1)


class IngressConfig(BaseModel):
    """Ingress deployment ``user_config``: micro-batching of single-row requests, load shedding, log shipping."""

    max_batch_size: int = Field(256, ge=1, description="Single-row requests carried by one scorer call")
    batch_wait_timeout_s: float = Field(0.002, ge=0)
    max_batch_rows: int = Field(10_000, ge=1, description="Largest /predict/batch request")
    max_in_flight_requests: int = Field(
        1024, ge=1, description="Scoring requests one ingress replica holds at once; beyond it 503 + Retry-After "
                                "(direct ingress bypasses Serve's own max_ongoing/max_queued limits)")
    log_flush_interval_s: float = Field(0.05, gt=0, description="Decisions are handed to the log writer this often")
    log_flush_max_records: int = Field(2000, ge=1, le=10_000, description="... or when this many are buffered")


class LogWriterConfig(BaseModel):
    """Log-writer deployment ``user_config``."""

    retry_interval_s: float = Field(2.0, gt=0, description="How often a down database is retried")
    replay_chunk_records: int = Field(5000, ge=1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
