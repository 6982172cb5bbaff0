#!/usr/bin/env bash
# The console overview at scale: GET /console's server time with ACCOUNTS accounts and
# LINES journal lines spread over DAYS days, on SQLite and on PostgreSQL.
#
# Each backend: a fresh database migrated by the sidecar, three services, then a bulk
# insert straight in SQL (per account: one grant lot, then captures of closed holds,
# balances consistent so the ledger audit passes, checked in SQL before timing), then
# the release sidecar is started, signs in to the console with an admin token and
# GET /console is asked REQUESTS times one after another. Times are the server's own:
# the `micros` of each request's "answered" log line (from the request's arrival to its
# answer, without the network), for route /console only. The first request is reported
# apart: it rolls the closed days up into their per-day totals once.
#
# Usage: bench/console_overview.sh     (a few minutes after the release build)
# Environment (defaults in brackets):
#   PGURL     [postgres://iap:iap@127.0.0.1:5432]  role with CREATEDB; loopback only
#   PG_DB     [iap_bench_console]  (dropped, recreated)
#   ACCOUNTS [10000]  LINES [1000000]  DAYS [90]  REQUESTS [200]
#   BIN       [target/release/iap-sidecar]  the binary to measure (e.g. an older build)
#   OUT       [target/bench-console]  databases, logs and results
#   SKIP_BUILD [0]  1 to use BIN as it is
#   BACKENDS  [sqlite pg]
# Not part of CI. Needs: cargo, psql, sqlite3, python3 with requests.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

PGURL=${PGURL:-postgres://iap:iap@127.0.0.1:5432}
PG_DB=${PG_DB:-iap_bench_console}
ACCOUNTS=${ACCOUNTS:-10000}
LINES=${LINES:-1000000}
DAYS=${DAYS:-90}
REQUESTS=${REQUESTS:-200}
BIN=${BIN:-target/release/iap-sidecar}
OUT=${OUT:-target/bench-console}
SKIP_BUILD=${SKIP_BUILD:-0}
BACKENDS=${BACKENDS:-sqlite pg}

say() { printf '\n== %s\n' "$*"; }
die() { printf 'console_overview.sh: %s\n' "$*" >&2; exit 1; }

case ${PGURL#*://} in
    *@127.*|*@localhost*|*@\[::1\]*|127.*|localhost*) ;;
    *) die "PGURL must point at a loopback address: this benchmark only runs on this machine" ;;
esac
PG_BASE=${PGURL%/}
[[ ${PG_BASE#*://} == */* ]] && PG_BASE=${PG_BASE%/*}
(( LINES % ACCOUNTS == 0 )) || die "LINES must be a multiple of ACCOUNTS"
PER_ACCOUNT=$(( LINES / ACCOUNTS ))
(( PER_ACCOUNT >= 2 )) || die "at least two lines per account"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [[ $SKIP_BUILD != 1 ]]; then
    say "release build"
    cargo build --release --bin iap-sidecar
fi
[[ -x $BIN ]] || die "no binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

SIDECAR_PID=
cleanup() {
    if [[ -n $SIDECAR_PID ]]; then
        kill -TERM "$SIDECAR_PID" 2>/dev/null || true
        wait "$SIDECAR_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# The bulk fill, in SQL both backends run: ACCOUNTS accounts over three services, each
# with one grant lot and PER_ACCOUNT - 1 captures (each of a closed hold), dated evenly
# over the last DAYS days; every balance, balance_after and lot remainder consistent.
# One account in ten has an alert threshold, one in a hundred is at it.
fill_sql() { # NOW_MICROS
    local now=$1 day=86400000000
    local span=$(( DAYS * day ))
    local step=$(( span / LINES ))
    local start=$(( now - span ))
    # Captures of 1 to 50 credits (units of 1/10000): the grant covers the largest case.
    local grant=$(( PER_ACCOUNT * 50 * 10000 ))
    cat <<SQL
CREATE TEMP TABLE bench_k AS WITH RECURSIVE n(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM n WHERE x < $PER_ACCOUNT) SELECT x AS k FROM n;
CREATE TEMP TABLE bench_i AS WITH RECURSIVE n(x) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT x + 1 FROM n WHERE x < $ACCOUNTS) SELECT x AS i FROM n;
CREATE TEMP TABLE bench_lines AS
SELECT i, k,
       CASE WHEN k = 1 THEN $grant ELSE -((((i * 7 + k * 13) % 50) + 1) * 10000) END AS amount,
       $start + ((k - 1) * $ACCOUNTS + (i - 1)) * $step AS at
FROM bench_i CROSS JOIN bench_k;
CREATE TEMP TABLE bench_running AS
SELECT i, k, amount, at, SUM(amount) OVER (PARTITION BY i ORDER BY k) AS after FROM bench_lines;
INSERT INTO accounts (id, service_id, token_hash, token_hint, dbuuid, balance, reserved, last_seq, warning_threshold, created_at, updated_at)
SELECT i, 1 + (i % 3), 'bench-token-hash-' || i, 'bench' || i, 'bench-db-' || (i % 100),
       r.after, 0, $PER_ACCOUNT,
       CASE WHEN i % 10 = 0 THEN (CASE WHEN i % 100 = 0 THEN r.after ELSE 10000 END) ELSE 0 END,
       $start, $now
FROM bench_running r WHERE r.k = $PER_ACCOUNT;
INSERT INTO lots (account_id, amount, remaining, expires_at, origin, reference, created_at)
SELECT i, $grant, r.after, 9223372036854775807, 'grant', NULL, $start
FROM bench_running r WHERE r.k = $PER_ACCOUNT;
INSERT INTO holds (account_id, token_hash, amount, status, captured, description, created_at, expires_at, closed_at)
SELECT i, 'bench-hold-' || i || '-' || k, -amount, 'captured', -amount, 'bench', at, at + 3600000000, at
FROM bench_running WHERE k > 1;
INSERT INTO journal (account_id, seq, kind, amount, balance_after, hold_id, lot_id, description, effective_at, recorded_at)
SELECT r.i, r.k, CASE WHEN r.k = 1 THEN 'grant' ELSE 'capture' END, r.amount, r.after,
       h.id, CASE WHEN r.k = 1 THEN l.id END, 'bench', r.at, r.at
FROM bench_running r
JOIN lots l ON l.account_id = r.i
LEFT JOIN holds h ON h.token_hash = 'bench-hold-' || r.i || '-' || r.k
ORDER BY r.at;
SQL
}

# The ledger audit, in SQL: accounts whose balance is not the sum of their journal, not
# their last balance_after, not their lot's remainder, or which hold anything.
AUDIT_SQL="SELECT COUNT(*) FROM accounts a WHERE a.reserved <> 0
 OR a.balance <> (SELECT SUM(j.amount) FROM journal j WHERE j.account_id = a.id)
 OR a.balance <> (SELECT j.balance_after FROM journal j WHERE j.account_id = a.id AND j.seq = a.last_seq)
 OR a.balance <> (SELECT SUM(l.remaining) FROM lots l WHERE l.account_id = a.id)"

# start_sidecar DATABASE_URL LABEL: serves on a free loopback port; sets SIDECAR_PID, SIDECAR_URL.
start_sidecar() {
    local out="$OUT/sidecar-$2.out"
    IAP_SIDECAR__HTTP__BIND=127.0.0.1:0 \
    IAP_SIDECAR__DATABASE__URL="$1" \
    IAP_SIDECAR__LOG__LEVEL=info \
        "$BIN" serve >"$out" 2>"$OUT/sidecar-$2.log" &
    SIDECAR_PID=$!
    SIDECAR_URL=
    for _ in $(seq 1 600); do
        SIDECAR_URL=$(grep -o 'http://[0-9.:]*' "$out" 2>/dev/null | head -n 1 || true)
        [[ -n $SIDECAR_URL ]] && return 0
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 20 "$OUT/sidecar-$2.log"; die "the sidecar did not start"; }
        sleep 0.1
    done
    die "the sidecar did not print its address within 60 s"
}

stop_sidecar() {
    kill -TERM "$SIDECAR_PID"
    wait "$SIDECAR_PID" || true
    SIDECAR_PID=
}

# measure LABEL DATABASE_URL ADMIN_TOKEN
measure() {
    local label=$1 url=$2 token=$3
    start_sidecar "$url" "$label"
    python3 - "$SIDECAR_URL" "$token" "$REQUESTS" <<'PY'
import re, sys, requests
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = requests.Session()
form = s.get(f"{base}/console/login")
csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
r = s.post(f"{base}/console/login", data={"csrf": csrf, "token": token}, allow_redirects=False)
assert r.status_code == 303, (r.status_code, r.text[:300])
for _ in range(n):
    r = s.get(f"{base}/console")
    assert r.status_code == 200 and 'id="figures"' in r.text, (r.status_code, r.text[:300])
PY
    stop_sidecar
    python3 - "$OUT/sidecar-$label.log" "$label" "$OUT/$label.json" <<'PY'
import json, re, sys
path, label, out = sys.argv[1:4]
ansi = re.compile(r"\x1b\[[0-9;]*m")
times = []
for line in open(path, errors="replace"):
    line = ansi.sub("", line)
    if "answered" in line and re.search(r"method=GET route=/console[} ]", line):
        m = re.search(r"micros=(\d+)", line)
        if m:
            times.append(int(m.group(1)) / 1000)
assert times, f"no GET /console lines in {path}"
first, rest = times[0], sorted(times[1:])
pct = lambda p: rest[min(len(rest) - 1, int(round(p / 100 * (len(rest) - 1))))]
r = {"label": label, "requests": len(times), "first_ms": round(first, 2),
     "p50_ms": round(pct(50), 2), "p95_ms": round(pct(95), 2), "max_ms": round(rest[-1], 2)}
json.dump(r, open(out, "w"))
print(f"{label}: GET /console server time over {len(rest)} requests after the first: "
      f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms; first {r['first_ms']} ms")
PY
}

# setup LABEL DATABASE_URL RUN_SQL...: migrate, services, admin token, fill, audit.
setup() {
    local label=$1 url=$2
    shift 2
    local cli=(env IAP_SIDECAR__DATABASE__URL="$url" IAP_SIDECAR__LOG__LEVEL=warn "$BIN")
    "${cli[@]}" migrate >/dev/null
    for s in sms snailmail reveal; do
        "${cli[@]}" service add "$s" >/dev/null
    done
    TOKEN=$("${cli[@]}" admin-token create "bench-$label" | grep -o 'iapadm_[A-Za-z0-9_]*' | head -n 1)
    [[ -n $TOKEN ]] || die "no admin token"
    local now
    now=$(python3 -c 'import time; print(int(time.time() * 1e6))')
    say "$label: filling $ACCOUNTS accounts, $LINES journal lines over $DAYS days"
    local t0=$SECONDS
    fill_sql "$now" | "$@" >/dev/null
    echo "filled in $(( SECONDS - t0 )) s"
    local lines broken
    lines=$(echo "SELECT COUNT(*) FROM journal;" | "$@")
    broken=$(echo "$AUDIT_SQL;" | "$@")
    echo "journal lines: $lines; accounts failing the audit: $broken"
    [[ $lines == "$LINES" && $broken == 0 ]] || die "$label: the fill is not what it should be"
}

for backend in $BACKENDS; do
    case $backend in
    sqlite)
        rm -f "$OUT"/console.db*
        url="sqlite://$OUT/console.db"
        setup sqlite "$url" sqlite3 -bail "$OUT/console.db"
        echo "ANALYZE;" | sqlite3 "$OUT/console.db"
        ;;
    pg)
        psql "$PG_BASE/postgres" -XqAt -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
        url="$PG_BASE/$PG_DB"
        setup pg "$url" psql "$url" -XqAt -v ON_ERROR_STOP=1 -1
        psql "$url" -XqAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT setval(pg_get_serial_sequence('accounts', 'id'), (SELECT MAX(id) FROM accounts));
VACUUM ANALYZE accounts, lots, holds, journal;
SQL
        ;;
    *) die "unknown backend $backend" ;;
    esac
    say "$backend: $REQUESTS × GET /console"
    measure "$backend" "$url" "$TOKEN"
done
