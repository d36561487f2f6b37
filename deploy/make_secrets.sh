#!/usr/bin/env bash
# The compose stack's secrets, random, in ./secrets or $SECRETS_DIR (folder 0700): made once, kept on later runs.
# Rotate one by deleting its file (the database passwords: also re-run the schema service, which
# re-passwords the server's role; the owner's password is set only when the volume is first created).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
dir=${SECRETS_DIR:-secrets}
mkdir -p "$dir"
chmod 700 "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
make() { [ -s "$dir/$1" ] || { printf '%s\n' "$2" > "$dir/$1"; echo "$dir/$1 made"; }; }
make postgres_password "$(random)"
make database_owner_url "postgresql://postgres:$(cat "$dir/postgres_password")@postgres:5432/scoring"
make database_url "postgresql://scoring_app:$(random)@postgres:5432/scoring"
make api_key "$(random)"
make ray_token "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
# Readable inside the containers (compose bind-mounts each file with its mode); the 0700 folder keeps
# other users of this machine out.
chmod 644 "$dir"/*
