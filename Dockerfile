# Credit-scoring server image (BuildKit):  DOCKER_BUILDKIT=1 docker build -t credit-scoring .
#   Behind a TLS-inspecting proxy, give its CA to the build (used by uv, never stored in a layer):
#     --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
#   Without a registry: --build-arg PYTHON_IMAGE=... --build-arg UV_IMAGE=... (deploy/base/build.sh makes both).
# The build stage resolves the locked environment with uv; the runtime stage holds only the venv and the code.
ARG PYTHON_IMAGE=python:3.11-slim
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi; \
    uv sync --frozen --no-dev --no-install-project

FROM ${PYTHON_IMAGE}
# libgomp1: LightGBM's OpenMP runtime (reason codes load the booster), absent from slim Debian images.
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 scorer && mkdir -p /data/reports && chown -R scorer /data && chmod 700 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY core/ core/
COPY serve_app/ serve_app/
COPY deployments/ deployments/
COPY prediction_log/ prediction_log/
COPY models/ models/
COPY monitoring/ monitoring/
COPY loadtest/ loadtest/
COPY dashboard/ dashboard/
COPY .streamlit/ .streamlit/
COPY serve_config.yaml serve.env pyproject.toml ./
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app DATA_DIR=/data REPORTS_DIR=/data/reports
USER scorer
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# The launcher turns SIGTERM (and Ctrl-C) into serve run's graceful stop: buffered decisions flushed or spooled.
STOPSIGNAL SIGTERM
# serve.env (throughput, HAProxy) as the README's run command; a Ray head (token authentication, the
# token from RAY_AUTH_TOKEN_PATH) that workers join on ray-head:6379 (docker-compose.yml's internal
# network); the API on all interfaces of the container, published on the host's loopback by default.
CMD ["sh", "-c", "set -a && . ./serve.env && set +a && exec python -m serve_app.run --node-ip=ray-head --gcs-port=6379 --http-host=0.0.0.0"]
