#!/usr/bin/env bash
# OpenAPI conformance: schemathesis (every check) against a running sidecar on a free
# loopback port, with a throwaway SQLite database and a fresh admin token.
#   SCHEMATHESIS_EXAMPLES  examples per operation (default 300)
#   IAP_SIDECAR_BIN        the binary to run (default: cargo build, target/debug)
# Extra arguments go to `schemathesis run` (e.g. --include-path /api/v1/grants).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
examples="${SCHEMATHESIS_EXAMPLES:-300}"

if [ "$(schemathesis --version 2>/dev/null || true)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

bin="${IAP_SIDECAR_BIN:-}"
if [ -z "$bin" ]; then
    cargo build --quiet --bin iap-sidecar
    bin=target/debug/iap-sidecar
fi

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<TOML
[http]
bind = "127.0.0.1:0"
[database]
url = "sqlite://$work/iap.db"
[alerts]
worker = false
[payments]
webhook_secret = "whsec_schemathesis_0123456789"
[log]
level = "warn"
TOML
export IAP_SIDECAR_CONFIG="$work/config.toml"

"$bin" migrate >/dev/null
token=$("$bin" admin-token create schemathesis | grep -Eo '[A-Za-z0-9_-]{32,}' | head -n 1)
# A service, so operations on existing resources have something to find.
"$bin" service add sms --label SMS >/dev/null

"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | head -n 1 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "the sidecar did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi

start=$(date +%s)
status=0
# Run from the scratch directory: schemathesis keeps its example database in the cwd.
config="$PWD/.ci/schemathesis.toml"
(cd "$work" && schemathesis --config-file "$config" run "$addr/api/v1/openapi.json" \
    --checks all \
    --max-examples "$examples" \
    --header "Authorization: Bearer $token" \
    --workers 2 \
    --seed 12 \
    --no-color \
    --report junit --report-dir "$work/report" \
    "$@") || status=$?
# Per-operation times and outcomes stay after the run (target/ is ignored by git).
mkdir -p target/schemathesis && cp "$work"/report/*.xml target/schemathesis/ 2>/dev/null || true
echo "schemathesis: ${examples} examples per operation, $(( $(date +%s) - start )) s, exit ${status}"
exit "$status"
