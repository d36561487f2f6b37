# Credit-scoring server image: `docker build -t credit-scoring .`
# Build stage resolves the locked environment with uv; the runtime stage holds only the venv and the code.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 scorer && mkdir -p /data && chown scorer /data
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
COPY serve_config.yaml serve.env pyproject.toml ./
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app DATA_DIR=/data REPORTS_DIR=/data/reports
USER scorer
EXPOSE 8000 6379 8265 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# Ctrl-C, not SIGTERM: serve run then shuts down gracefully (buffered decisions flushed or spooled).
STOPSIGNAL SIGINT
# serve.env (fast ingress) as the README's run command; a Ray head that workers can join on port 6379
# (docker-compose.yml's scale-out profile), the app run in the foreground; all interfaces in the container.
CMD ["sh", "-c", "set -a && . ./serve.env && set +a && sed 's/host: 127.0.0.1/host: 0.0.0.0/' serve_config.yaml > /tmp/serve_config.yaml && ray start --head --port=6379 --dashboard-host=0.0.0.0 --metrics-export-port=8080 --disable-usage-stats && exec serve run --address=auto /tmp/serve_config.yaml"]
