#!/bin/sh
# HAProxy as Ray Serve starts it (haproxy -db -f CONFIG ...), with its side doors closed:
# Ray 2.60's template binds the statistics page (*:8404) and the Prometheus endpoint (:9101) to
# every interface and creates the admin socket with mode 666 at level admin. Before HAProxy reads
# the config, bind those two to 127.0.0.1 and make the socket 0600. The API frontend keeps the host
# serve_config.yaml's http_options.host gives it. Add "timeout http-request" (slowloris). Set by serve_app/run.py (RAY_SERVE_HAPROXY_BINARY_PATH);
# CREDIT_HAPROXY_BINARY is the HAProxy binary bundled with Ray.
set -eu
config=""
previous=""
for arg in "$@"; do
  [ "$previous" = "-f" ] && config="$arg"
  previous="$arg"
done
# Only those two ports (Ray's constants, overridable like Ray's): with http_options.host 0.0.0.0 the API
# frontend is "bind *:8000" too, and must stay on every interface (the container's published port).
stats=${RAY_SERVE_HAPROXY_STATS_PORT:-8404}
metrics=${RAY_SERVE_HAPROXY_METRICS_PORT:-9101}
if [ -n "$config" ] && [ -f "$config" ]; then
  sed -i -E \
    -e "s/^([[:space:]]*bind[[:space:]]+)\\*?:(${stats}|${metrics})[[:space:]]*\$/\\1127.0.0.1:\\2/" \
    -e 's/(stats socket [^ ]+ mode )666/\1600/' \
    "$config"
  # Ray sets no "timeout http-request": a client that sends its headers one byte a minute (slowloris) holds a
  # connection for the whole client timeout (an hour by default). Bound the time to send a request.
  if ! grep -q "timeout http-request" "$config"; then
    sed -i -E "0,/^([[:space:]]*)(mode http)[[:space:]]*\$/s//\1\2\n\1timeout http-request ${CREDIT_HAPROXY_HTTP_REQUEST_TIMEOUT_S:-10}s/" \
      "$config"
  fi
  # The API frontend waits for the request body (up to tune.bufsize) within that same "timeout http-request"
  # before a replica sees the request: a client trickling a body is answered 408 by HAProxy instead of holding
  # the replica's admission. Ray honours the client's own x-request-timeout-seconds and
  # x-request-disconnect-disabled headers (no timeout, no cancel on disconnect): they are not the client's to set.
  if ! grep -q "option http-buffer-request" "$config"; then
    sed -i -E "s/^([[:space:]]*)(frontend http_frontend)[[:space:]]*\$/\1\2\n    option http-buffer-request\n    http-request del-header x-request-timeout-seconds\n    http-request del-header x-request-disconnect-disabled/" \
      "$config"
  fi
fi
exec "${CREDIT_HAPROXY_BINARY:?set by serve_app/run.py}" "$@"
