#!/usr/bin/env bash
# Local base images for a machine that reaches Debian's mirror and PyPI but no image registry:
#   credit-scoring-base/python:3.11-slim  Debian 12 minbase + Python 3.11 (stands in for python:3.11-slim)
#   credit-scoring-base/postgres:16       Debian 12 + PostgreSQL 15 with the official image's init contract
#                                         (POSTGRES_PASSWORD_FILE, POSTGRES_DB, /docker-entrypoint-initdb.d)
#   credit-scoring-base/uv:local          the uv binary of this machine (stands in for ghcr.io/astral-sh/uv)
# An image that exists is kept (a second run builds nothing); FORCE=1 rebuilds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PREFIX=credit-scoring-base
# the uv binary itself (a pyenv shim is a script): pip's uv package knows where it is
UV_BIN=${UV_BIN:-$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || command -v uv)}
have() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$PREFIX/debian:bookworm"; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$PREFIX/debian:bookworm" >/dev/null
  rm -rf "$root"; trap - EXIT
  echo "built $PREFIX/debian:bookworm"
fi

if ! have "$PREFIX/python:3.11-slim"; then
  docker build -q -t "$PREFIX/python:3.11-slim" - >/dev/null <<DOCKERFILE
FROM $PREFIX/debian:bookworm
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3.11 ca-certificates && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3.11 /usr/local/bin/python && ln -s /usr/bin/python3.11 /usr/local/bin/python3
ENV LANG=C.UTF-8
CMD ["python3"]
DOCKERFILE
  echo "built $PREFIX/python:3.11-slim"
fi

# rebuilt when its entrypoint changes (the image carries the script's digest as a label)
entrypoint_sha=$(sha256sum "$here/postgres-entrypoint.sh" | cut -c1-16)
if ! have "$PREFIX/postgres:16" || [ "$(docker image inspect -f '{{index .Config.Labels "entrypoint"}}' \
     "$PREFIX/postgres:16")" != "$entrypoint_sha" ]; then
  docker build -q -t "$PREFIX/postgres:16" -f - "$here" >/dev/null <<DOCKERFILE
FROM $PREFIX/debian:bookworm
LABEL entrypoint=$entrypoint_sha
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      postgresql-15 && rm -rf /var/lib/apt/lists/* && mkdir /docker-entrypoint-initdb.d
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
DOCKERFILE
  echo "built $PREFIX/postgres:16"
fi

if ! have "$PREFIX/uv:local"; then
  dir=$(mktemp -d)
  cp "$UV_BIN" "$dir/uv"
  tar -C "$dir" -c uv | docker import -c 'CMD ["/uv"]' - "$PREFIX/uv:local" >/dev/null
  rm -rf "$dir"
  echo "built $PREFIX/uv:local ($("$UV_BIN" --version))"
fi
docker image ls "$PREFIX/*" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
