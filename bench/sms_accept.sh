#!/usr/bin/env bash
# SMS accepted per second into the outbox: Odoo-shaped send calls (batches of BATCH
# numbers, CLIENTS connections) against a release sidecar whose SMS worker is off, so
# the figure is what the send route takes (price, hold per message, outbox row, in one
# transaction per call), on SQLite and on PostgreSQL.
#
# Usage: bench/sms_accept.sh    Environment [defaults]: PGURL [postgres://iap:iap@127.0.0.1:5432]
#   PG_DB [iap_bench_sms]  CLIENTS [8]  BATCH [100]  ACCOUNTS [100]  SECS [10]
#   OUT [target/bench-sms]  SKIP_BUILD [0]
# Not part of CI. Needs: cargo, python3, a PostgreSQL role with CREATEDB on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
PGURL=${PGURL:-postgres://iap:iap@127.0.0.1:5432}
PG_DB=${PG_DB:-iap_bench_sms}
CLIENTS=${CLIENTS:-8} BATCH=${BATCH:-100} ACCOUNTS=${ACCOUNTS:-100} SECS=${SECS:-10}
OUT=${OUT:-target/bench-sms}
mkdir -p "$OUT"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --bin iap-sidecar >/dev/null
bin=target/release/iap-sidecar

run_backend() {  # run_backend NAME DATABASE_URL
    local name=$1 url=$2 port pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$OUT/$name.toml" <<TOML
[http]
bind = "127.0.0.1:$port"
[database]
url = "$url"
[log]
level = "warn"
[sms]
gateway = "relay"
worker = false
max_batch = 1000
prices = { "*" = "1" }
[sms.gateways.relay]
kind = "webhook"
url = "http://127.0.0.1:9/relay"
secret = "bench-secret-bench-secret-bench-secret"
TOML
    export IAP_SIDECAR_CONFIG=$OUT/$name.toml
    "$bin" migrate >/dev/null
    "$bin" service add sms >/dev/null
    for i in $(seq 0 $((ACCOUNTS - 1))); do
        "$bin" credit grant "bench-$i" sms 100000000 >/dev/null
    done
    "$bin" serve >"$OUT/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 0.1
    done
    python3 bench/sms_load.py --url "http://127.0.0.1:$port" --clients "$CLIENTS" \
        --batch "$BATCH" --accounts "$ACCOUNTS" --duration "$SECS" | tee "$OUT/$name.json"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    unset IAP_SIDECAR_CONFIG
}

rm -f "$OUT"/sqlite.db*
echo "== SQLite"
run_backend sqlite "sqlite://$PWD/$OUT/sqlite.db"
echo "== PostgreSQL"
psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
run_backend postgres "$PGURL/$PG_DB"
