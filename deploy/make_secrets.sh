#!/usr/bin/env bash
# The compose stack's secrets, random, in ./secrets or $SECRETS_DIR (folder 0700): made once, kept on later runs.
# Rotate one by deleting its file (the database passwords: also re-run the schema service, which
# re-passwords the server's role; the owner's password is set only when the volume is first created).
# TLS: a CA of this stack (its key stays here, in no container) signs PostgreSQL's certificate (name "postgres")
# and the gateway's ("gateway", localhost, 127.0.0.1 and the names in $TLS_NAMES, e.g. "DNS:scoring.example.com");
# the database URLs verify PostgreSQL's certificate against it (sslmode=verify-full). To serve under your own
# name and CA, replace gateway_tls.pem (certificate chain and key) and give clients your CA.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
dir=${SECRETS_DIR:-secrets}
mkdir -p "$dir"
chmod 700 "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
make() { [ -s "$dir/$1" ] || { printf '%s\n' "$2" > "$dir/$1"; echo "$dir/$1 made"; }; }
verified="sslmode=verify-full&sslrootcert=/run/secrets/tls_ca"
make postgres_password "$(random)"
make database_owner_url "postgresql://postgres:$(cat "$dir/postgres_password")@postgres:5432/scoring?$verified"
make database_url "postgresql://scoring_app:$(random)@postgres:5432/scoring?$verified"
for url in database_owner_url database_url; do   # made before TLS: verify the server from now on
  grep -q "sslmode=" "$dir/$url" || { sed -i "s|\$|?$verified|" "$dir/$url"; echo "$dir/$url: TLS added"; }
done
make api_key "$(random)"
make ray_token "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
if [ ! -s "$dir/tls_ca" ]; then
  key "$dir/tls_ca.key"
  openssl req -x509 -new -key "$dir/tls_ca.key" -days 3650 -subj "/CN=credit-scoring stack CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/tls_ca"
  echo "$dir/tls_ca made"
fi
signed() {   # signed NAME SUBJECT_ALT_NAMES: NAME.key and NAME.crt, a server certificate from the stack's CA
  key "$dir/$1.key"
  openssl req -new -key "$dir/$1.key" -subj "/CN=$1" -out "$dir/$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n%s\n' "$2" \
    "basicConstraints=CA:FALSE" > "$dir/$1.ext"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/tls_ca" -CAkey "$dir/tls_ca.key" -CAcreateserial -days 825 \
    -extfile "$dir/$1.ext" -out "$dir/$1.crt" 2>/dev/null
  rm -f "$dir/$1.csr" "$dir/$1.ext"
}
if [ ! -s "$dir/postgres_tls_crt" ]; then
  signed postgres "DNS:postgres"
  mv "$dir/postgres.crt" "$dir/postgres_tls_crt"; mv "$dir/postgres.key" "$dir/postgres_tls_key"
  echo "$dir/postgres_tls_crt made"
fi
if [ ! -s "$dir/gateway_tls.pem" ]; then
  signed gateway "DNS:gateway,DNS:localhost,IP:127.0.0.1${TLS_NAMES:+,$TLS_NAMES}"
  cat "$dir/gateway.crt" "$dir/gateway.key" > "$dir/gateway_tls.pem"
  rm -f "$dir/gateway.crt" "$dir/gateway.key"
  echo "$dir/gateway_tls.pem made"
fi
# Readable inside the containers (compose bind-mounts each file with its mode; PostgreSQL's entrypoint copies
# its key to a file of its own, 0600); the 0700 folder keeps other users of this machine out. The CA's key is
# mounted nowhere and stays the operator's only.
chmod 644 "$dir"/*
chmod 600 "$dir/tls_ca.key"
