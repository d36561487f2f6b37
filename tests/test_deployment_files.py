"""Dockerfile, docker-compose.yml and the CI workflow agree with the code (no Docker engine here: parsed, not built)."""

from __future__ import annotations

import re

import pytest
import yaml

from core.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
SERVE_CONFIG = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def test_compose_services_and_dependencies() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "api", "dashboard", "ray-worker"}
    assert [name for name, s in services.items() if s.get("profiles")] == ["ray-worker"]   # optional
    assert services["postgres"]["image"] == "postgres:16" and "healthcheck" in services["postgres"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dashboard"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert set(COMPOSE["volumes"]) == {"pgdata", "data"}


def test_compose_environment_names_are_settings() -> None:
    for name in ("api", "dashboard"):
        assert set(COMPOSE["services"][name]["environment"]) <= SETTINGS_ENV, name
    dsn = COMPOSE["services"]["api"]["environment"]["DATABASE_URL"]
    assert dsn.startswith("postgresql://") and "@postgres:5432/" + COMPOSE["services"]["postgres"]["environment"]["POSTGRES_DB"] in dsn
    assert COMPOSE["services"]["dashboard"]["environment"]["API_URL"] == f"http://api:{SERVE_CONFIG['http_options']['port']}"


def test_ports_match_the_serve_config_and_dashboard() -> None:
    port = SERVE_CONFIG["http_options"]["port"]
    assert COMPOSE["services"]["api"]["ports"] == [f"{port}:{port}"]
    assert f"EXPOSE {port}" in DOCKERFILE and f"127.0.0.1:{port}/health" in DOCKERFILE
    dashboard = COMPOSE["services"]["dashboard"]
    assert dashboard["ports"] == ["8501:8501"] and "8501" in dashboard["command"]
    assert (PROJECT_ROOT / dashboard["command"][2]).is_file()


def test_dockerfile_copies_paths_that_exist_and_runs_the_readme_server() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), source
    packages = {p.name for p in PROJECT_ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    copied = {line.split()[1].rstrip("/") for line in DOCKERFILE.splitlines() if line.startswith("COPY ")}
    assert packages <= copied, f"packages the image lacks: {packages - copied}"
    assert re.search(r"USER scorer", DOCKERFILE) and "uv sync --frozen" in DOCKERFILE
    assert "host: 127.0.0.1" in (PROJECT_ROOT / "serve_config.yaml").read_text()   # what the CMD rewrites
    assert ". ./serve.env" in DOCKERFILE and "serve run" in DOCKERFILE


def test_ci_workflow_runs_the_ci_script() -> None:
    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "test.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    assert any("bash .ci/run" in step.get("run", "") for step in steps)


def test_ray_worker_joins_the_head_the_image_starts() -> None:
    head_port = re.search(r"ray start --head --port=(\d+)", DOCKERFILE).group(1)
    worker = COMPOSE["services"]["ray-worker"]
    command = worker["command"][-1]
    assert f"ray start --address=api:{head_port}" in command and "--block" in command and ". ./serve.env" in command
    assert worker["depends_on"]["api"]["condition"] == "service_healthy" and worker["build"] == "."
    assert "serve run --address=auto" in DOCKERFILE and "STOPSIGNAL SIGINT" in DOCKERFILE


def test_every_serve_config_key_is_a_known_setting() -> None:
    """serve_config.yaml only overrides settings that exist (a typo would silently be ignored by Serve)."""
    from core.settings import DEPLOYMENT_DEFAULTS, USER_CONFIGS, DeploymentOptions

    (app,) = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())["applications"]
    names = {d["name"] for d in app["deployments"]}
    assert names == set(DEPLOYMENT_DEFAULTS) == set(USER_CONFIGS)
    for deployment in app["deployments"]:
        options = {k: v for k, v in deployment.items() if k not in ("name", "user_config")}
        assert set(options) <= set(DeploymentOptions.model_fields), deployment["name"]
        DeploymentOptions.model_validate(DEPLOYMENT_DEFAULTS[deployment["name"]].model_dump() | options)
        USER_CONFIGS[deployment["name"]].model_validate(deployment.get("user_config") or {})  # extra keys fail


def test_a_misspelt_setting_is_refused() -> None:
    import pydantic

    from core.settings import IngressConfig

    with pytest.raises(pydantic.ValidationError):
        IngressConfig.model_validate({"max_batch_sise": 10})


def test_deployment_decorators_carry_no_options() -> None:
    """Defaults live in core.settings only, not in the @serve.deployment decorators."""
    import re

    for name in ("ingress", "scorer", "log_writer"):
        source = (PROJECT_ROOT / "deployments" / f"{name}.py").read_text()
        assert re.search(r"^@serve\.deployment$", source, re.M), name
