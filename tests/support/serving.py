"""Helpers for tests that run the real Serve application and speak HTTP to it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from core.polling import wait_until
from core.settings import ARG_NAMES, PROJECT_ROOT
from loadtest.server_process import wait_healthy, with_overrides

APP_NAME = "credit"


@dataclass
class RunningApp:
    url: str
    data_dir: Path
    api_key: str
    env: dict[str, str]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **({"timeout": 30} | kwargs))

    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/predictions/stats", headers=self.auth(), timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_logged(self, expected: int, timeout_s: float = 60) -> dict[str, Any]:
        """Poll until the store holds ``expected`` records (or time out); returns the last stats."""
        try:
            return wait_until(lambda: (stats := self.stats())["records_in_store"] == expected and stats,
                              timeout_s, f"{expected} records in the store")
        except TimeoutError:
            return self.stats()




def app_config(env: dict[str, str], options: dict[str, dict[str, Any]] | None = None,
               **user_configs: dict[str, Any]) -> dict[str, Any]:
    """serve_config.yaml's application, with replica ``env``, deployment ``options`` (by deployment
    name, e.g. ``{"Scorer": {"num_replicas": 2}}``) and user_config overrides merged in."""
    app = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())["applications"][0]
    app["runtime_env"] = {"env_vars": env}   # as an operator sets it; merged into every replica
    overrides = {name: dict(opts) for name, opts in (options or {}).items()}
    for key, user_config in user_configs.items():
        overrides.setdefault(ARG_NAMES[key], {})["user_config"] = user_config
    return with_overrides(app, overrides)


def deploy(url: str, env: dict[str, str], options: dict[str, dict[str, Any]] | None = None,
           **user_configs: dict[str, Any]) -> None:
    """Apply serve_config.yaml (as ``serve deploy`` does) with overrides, and wait for /health.

    A redeploy that changes only user_config reconfigures the running replicas in place.
    """
    from ray import serve
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema(applications=[app_config(env, options, **user_configs)])
    serve.context._get_global_client().deploy_apps(schema)
    wait_until(lambda: _settled(url, env), 180, "the new application version to run, its log store up")
    wait_healthy(url)


def _settled(url: str, env: dict[str, str]) -> bool:
    """Every deployment RUNNING at its target (no old replica left draining: it would answer with the old
    environment) and the log writer connected to the store this environment names."""
    from ray import serve

    status = serve.status().applications.get(APP_NAME)
    if status is None or status.status != "RUNNING":
        return False
    if any(d.status != "HEALTHY" or set(d.replica_states) != {"RUNNING"} for d in status.deployments.values()):
        return False
    stats = httpx.get(f"{url}/predictions/stats", headers={"X-API-Key": env["API_KEY"]}, timeout=10).json()
    return bool(stats["store_up"]) and stats["backend"] == ("postgresql" if env.get("DATABASE_URL") else "file")


@dataclass
class Answer:
    sent_at: float
    """``time.monotonic()`` when the request was sent."""
    status: int
    """HTTP status, or 0 when the connection failed."""
    body: dict[str, Any] | None
    retry_after: str | None = None


class ClientThreads:
    """Client threads running ``_run`` until ``stop`` (the load generators of the tests share this)."""

    _threads: list[threading.Thread]
    _stop: threading.Event

    def start(self) -> ClientThreads:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@dataclass
class Load(ClientThreads):
    """Steady /predict traffic on ``connections`` threads until ``stop``; keeps every answer."""

    url: str
    connections: int = 4
    timeout_s: float = 30
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        from core.reference import sample_applicants

        self._applicants = sample_applicants(50, seed=21)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.connections)]

    def _run(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            i = offset
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post("/predict", json=self._applicants[i % 50])
                    ok = response.status_code == 200
                    self.answers.append(Answer(sent, response.status_code, response.json() if ok else None,
                                               response.headers.get("retry-after")))
                except httpx.HTTPError:
                    self.answers.append(Answer(sent, 0, None))
                    time.sleep(0.01)   # server gone or restarting: don't spin
                i += self.connections

    def start(self) -> Load:
        super().start()
        return self

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        """Block until ``count`` more answers have arrived."""
        target = len(self.answers) + count
        wait_until(lambda: len(self.answers) >= target, timeout_s, f"{count} more answers", interval_s=0.05)

    @property
    def statuses(self) -> list[int]:
        return [a.status for a in self.answers]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [a.body for a in self.answers if a.body is not None]


def send_singles(url: str, applicants: list[dict[str, Any]], threads: int = 8) -> tuple[dict[str, dict], int]:
    """POST each applicant to /predict from a thread pool; returns {request_id: body} of 200s and the non-200 count."""
    def one(client: httpx.Client, applicant: dict[str, Any]) -> dict | None:
        try:
            response = client.post("/predict", json=applicant)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(threads) as pool:
        bodies = list(pool.map(lambda a: one(client, a), applicants))
    ok = {b["request_id"]: b for b in bodies if b is not None}
    return ok, sum(b is None for b in bodies)
