"""Dockerfile, docker-compose.yml and the CI workflow agree with the code and keep the stack closed (parsed here;
``tests/test_containers.py`` builds and runs them)."""

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
    assert set(services) == {"postgres", "schema", "api", "gateway", "dashboard", "ray-worker"}
    assert [name for name, s in services.items() if s.get("profiles")] == ["ray-worker"]   # optional
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:16}" and "healthcheck" in services["postgres"]
    needs = {name: {dep: c["condition"] for dep, c in s.get("depends_on", {}).items()} for name, s in services.items()}
    assert needs == {"postgres": {}, "schema": {"postgres": "service_healthy"},
                     "api": {"schema": "service_completed_successfully"}, "gateway": {"api": "service_healthy"},
                     "dashboard": {"gateway": "service_healthy"}, "ray-worker": {"api": "service_healthy"}}
    assert set(COMPOSE["volumes"]) == {"pgdata", "data", "reports"}
    assert COMPOSE["services"]["dashboard"]["volumes"] == ["reports:/data/reports:ro"], "no personal data"


def test_compose_environment_names_are_settings_and_hold_no_secret() -> None:
    known = SETTINGS_ENV | {"CREDIT_SECRETS_DIR", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE", "SSL_CERT_FILE"}
    for name in ("api", "dashboard", "ray-worker"):
        assert set(COMPOSE["services"][name]["environment"]) <= known, name
    for name, service in COMPOSE["services"].items():
        for key in service.get("environment") or {}:
            assert not re.search(r"PASSWORD$|_KEY$|_KEYS$|TOKEN$|DATABASE_URL", key), (
                f"{name}: {key} in the environment"
            )
    dashboard = COMPOSE["services"]["dashboard"]
    assert dashboard["secrets"] == ["tls_ca"], "the dashboard holds no key (visitors sign in), only the stack's CA"
    assert dashboard["environment"]["API_URL"] == f"https://gateway:{SERVE_CONFIG['http_options']['port']}"
    assert dashboard["environment"]["SSL_CERT_FILE"] == "/run/secrets/tls_ca"


def test_every_secret_is_a_file_made_by_the_script_without_a_default() -> None:
    script = (PROJECT_ROOT / "deploy" / "make_secrets.sh").read_text()
    for name, secret in COMPOSE["secrets"].items():
        if name == "ca":  # build-time only, optional (a proxy's CA; /dev/null = none)
            assert secret["file"] == "${BUILD_CA_FILE:-/dev/null}"
            continue
        assert secret["file"] == "${SECRETS_DIR:-./secrets}/" + name, name
        assert f"make {name} " in script or f'"$dir/{name}"' in script, name
    assert (
        "secrets/" in (PROJECT_ROOT / ".gitignore").read_text()
        and "secrets/" in (PROJECT_ROOT / ".dockerignore").read_text()
    )
    app_dsn = 'make database_url "postgresql://scoring_app:'
    assert app_dsn in script, "the server connects as its least-privilege role, not as postgres"


def test_only_the_api_and_the_dashboard_are_published_on_loopback_by_default() -> None:
    port = SERVE_CONFIG["http_options"]["port"]
    published = {name: s["ports"] for name, s in COMPOSE["services"].items() if s.get("ports")}
    assert published == {
        "gateway": [
            f"${{PUBLISH_ADDRESS:-127.0.0.1}}:${{API_PORT:-{port}}}:{port}",
            "${PUBLISH_ADDRESS:-127.0.0.1}:${DASHBOARD_PORT:-8501}:8501",
        ]
    }
    assert re.findall(r"^EXPOSE .*$", DOCKERFILE, re.M) == [f"EXPOSE {port}"]  # no Ray port
    assert f"127.0.0.1:{port}/health" in DOCKERFILE
    gateway = (PROJECT_ROOT / "deploy" / "gateway.cfg").read_text()
    assert f"server api api:{port}" in gateway and "server dashboard dashboard:8501" in gateway
    assert len(re.findall(r"^\s*server ", gateway, re.M)) == 2
    binds = re.findall(r"^\s*bind (\S+)(.*)$", gateway, re.M)  # TLS on every bind but the loopback health check
    assert binds == [
        (f":{port}", " ssl crt /run/secrets/gateway_tls.pem"),
        (":8501", " ssl crt /run/secrets/gateway_tls.pem"),
        ("127.0.0.1:8001", ""),
    ], binds
    dashboard = COMPOSE["services"]["dashboard"]
    assert "8501" in dashboard["command"] and (PROJECT_ROOT / dashboard["command"][2]).is_file()


def test_ray_lives_on_the_internal_network_only() -> None:
    networks = {name: set(s["networks"]) for name, s in COMPOSE["services"].items()}
    assert COMPOSE["networks"]["backend"]["internal"] is True
    assert networks == {
        "postgres": {"backend"},
        "schema": {"backend"},
        "api": {"backend"},
        "ray-worker": {"backend"},
        "gateway": {"backend", "frontend"},
        "dashboard": {"frontend"},
    }
    assert COMPOSE["services"]["api"]["networks"]["backend"]["aliases"] == ["ray-head"]


def test_dockerfile_copies_paths_that_exist_and_runs_the_launcher() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), source
    packages = {p.name for p in PROJECT_ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    copied = {line.split()[1].rstrip("/") for line in DOCKERFILE.splitlines() if line.startswith("COPY ")}
    assert packages <= copied, f"packages the image lacks: {packages - copied}"
    assert re.search(r"USER scorer", DOCKERFILE) and "uv sync --frozen" in DOCKERFILE
    assert (
        ". ./serve.env" in DOCKERFILE
        and "python -m serve_app.run --node-ip=ray-head --gcs-port=6379 --http-host=0.0.0.0" in DOCKERFILE
    )
    assert "STOPSIGNAL SIGTERM" in DOCKERFILE  # the launcher makes SIGTERM graceful
    assert "--mount=type=secret,id=ca,required=false" in DOCKERFILE


def test_ci_workflow_runs_the_ci_script() -> None:
    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "test.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    assert any("bash .ci/run" in step.get("run", "") for step in steps)


def test_ray_worker_joins_the_head_with_the_token() -> None:
    head_port = re.search(r"--gcs-port=(\d+)", DOCKERFILE).group(1)
    worker = COMPOSE["services"]["ray-worker"]
    command = worker["command"][-1]
    assert (
        f"ray start --address=ray-head:{head_port}" in command and "--block" in command and ". ./serve.env" in command
    )
    assert worker["environment"]["RAY_AUTH_MODE"] == "token" and "ray_token" in worker["secrets"]
    assert COMPOSE["services"]["api"]["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_token"


def test_every_serve_config_key_is_a_known_setting() -> None:
    """serve_config.yaml only overrides settings that exist (a typo would silently be ignored by Serve)."""
    from core.settings import DEPLOYMENT_DEFAULTS, USER_CONFIGS, DeploymentOptions

    (app,) = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())["applications"]
    names = {d["name"] for d in app["deployments"]}
    assert names <= set(DEPLOYMENT_DEFAULTS) == set(USER_CONFIGS)
    for deployment in app["deployments"]:
        options = {k: v for k, v in deployment.items() if k not in ("name", "user_config")}
        assert set(options) <= set(DeploymentOptions.model_fields), deployment["name"]
        DeploymentOptions.model_validate(DEPLOYMENT_DEFAULTS[deployment["name"]].model_dump() | options)
        USER_CONFIGS[deployment["name"]].model_validate(deployment.get("user_config") or {})  # extra keys fail


def test_serve_config_states_no_default_again() -> None:
    """Defaults are stated once (core/settings.py): the YAML holds only values that differ from them."""
    from core.settings import DEPLOYMENT_DEFAULTS, USER_CONFIGS

    (app,) = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())["applications"]
    repeated = []
    for deployment in app["deployments"]:
        name = deployment["name"]
        defaults = USER_CONFIGS[name]().model_dump()
        for key, value in (deployment.get("user_config") or {}).items():
            if defaults.get(key) == value:
                repeated.append(f"{name}.user_config.{key}")
        for key, value in deployment.items():
            if key not in ("name", "user_config") and DEPLOYMENT_DEFAULTS[name].model_dump().get(key) == value:
                repeated.append(f"{name}.{key}")
    assert not repeated, f"serve_config.yaml repeats defaults: {repeated}"


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
