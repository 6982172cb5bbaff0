#!/usr/bin/env bash
# Checks the deployment examples by running them:
#   1. `systemd-analyze verify` on deploy/iap-sidecar.service;
#   2. `nginx -t` on deploy/nginx.conf (with a throw-away certificate);
#   3. the same nginx configuration served for real in front of a sidecar: pages, the
#      admin API and /health answered through TLS by the sidecar itself (its request id
#      comes back), /metrics refused to outsiders, plain http sent to https.
# Needs nginx, openssl, curl, systemd-analyze and a built binary
# (target/debug/iap-sidecar, or IAP_SIDECAR_BIN). Every missing tool is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${IAP_SIDECAR_BIN:-target/debug/iap-sidecar}"
for tool in nginx openssl curl systemd-analyze; do
    command -v "$tool" >/dev/null || { echo "deploy/check.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "deploy/check.sh: $bin is missing (cargo build)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "== systemd-analyze verify deploy/iap-sidecar.service"
# verify resolves ExecStart: point it at the built binary in a copy of the unit.
sed "s#/usr/local/bin/iap-sidecar#$(realpath "$bin")#" deploy/iap-sidecar.service > "$work/iap-sidecar.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$work/iap-sidecar.service" 2>&1 || true)
# The build host has no iap-sidecar user and no network-online target; anything else
# (an unknown key, a bad value) is a failure.
bad=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'iap-sidecar.service: Failed to resolve user' \
    -e 'network-online.target' -e 'postgresql.service' -e 'Unit .* not found' || true)
if [ -n "$bad" ]; then
    printf 'systemd-analyze verify:\n%s\n' "$out" >&2
    exit 1
fi
echo "ok"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
side_port=$(free_port); http_port=$(free_port); tls_port=$(free_port)

echo "== nginx -t deploy/nginx.conf"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=iap.example.org" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
# The example as shipped, with only ports, certificate paths and the allowed metrics
# network changed for a test on loopback.
sed -e "s#127.0.0.1:8070#127.0.0.1:$side_port#" \
    -e "s#listen 80;#listen 127.0.0.1:$http_port;#" -e "/listen \[::\]:80;/d" \
    -e "s#listen 443 ssl http2;#listen 127.0.0.1:$tls_port ssl http2;#" -e "/listen \[::\]:443/d" \
    -e "s#/etc/letsencrypt/live/iap.example.org/fullchain.pem#$work/cert.pem#" \
    -e "s#/etc/letsencrypt/live/iap.example.org/privkey.pem#$work/key.pem#" \
    -e "s#allow 127.0.0.1;#allow 192.0.2.1;#" \
    deploy/nginx.conf > "$work/site.conf"
cat > "$work/nginx.conf" <<CONF
daemon off;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 64; }
http {
    access_log $work/access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/site.conf;
}
CONF
nginx -t -q -p "$work" -c "$work/nginx.conf"
echo "ok"

echo "== nginx in front of a running sidecar"
cat > "$work/config.toml" <<CONF
[http]
bind = "127.0.0.1:$side_port"
public_url = "https://iap.example.org:$tls_port"
[database]
url = "sqlite://$work/iap.db"
[alerts]
worker = false
[log]
level = "info"
CONF
IAP_SIDECAR_CONFIG="$work/config.toml" "$bin" serve > "$work/sidecar.log" 2>&1 &
pids+=($!)
nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
curl_tls() { curl -sS --retry 50 --retry-delay 0 --retry-connrefused --max-time 5 \
    --resolve "iap.example.org:$tls_port:127.0.0.1" --cacert "$work/cert.pem" "$@"; }
base="https://iap.example.org:$tls_port"
curl_tls -f "$base/health" | grep -q '"status":"ok"'
curl_tls -f "$base/" | grep -q 'href="/console"'
[ "$(curl_tls -o /dev/null -w '%{http_code}' "$base/console")" = 303 ]
[ "$(curl_tls -o /dev/null -w '%{http_code}' "$base/api/v1/services")" = 401 ]
[ "$(curl_tls -o /dev/null -w '%{http_code}' "$base/metrics")" = 403 ]
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/health")" = 301 ]
# The answer is the sidecar's: it echoes the caller's request id through nginx.
curl_tls -sD - -o /dev/null -H 'x-request-id: through-nginx-1' "$base/health" \
    | grep -qi '^x-request-id: through-nginx-1'
grep -q '"GET /health' "$work/access.log"
echo "ok: served through nginx with TLS"
