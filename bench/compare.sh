#!/usr/bin/env bash
# One-machine comparison: iap-sidecar charges/s against what its databases can do.
#
#   PostgreSQL: pgbench (tpcb-like, 32 clients) TPS   vs  sidecar on PostgreSQL, 32 clients
#   SQLite:     raw durable commits/s (sqlite_baseline) vs sidecar on SQLite (synchronous=FULL)
#
# Each sidecar backend runs: uniform load (ACCOUNTS accounts), hot load (1 account), and
# uniform load scheduled at half the uniform peak (for p99 at a sustainable rate), each on
# a freshly started sidecar whose memory (VmHWM/VmRSS) and CPU are read under load.
# On PostgreSQL the database counters around each phase give commits, rows and WAL
# flushes per charge; as root, one short extra phase logs every statement of a few
# hundred charges (log_statement = all, on the benchmark database only) and counts them.
#
# Usage: bench/compare.sh   (about 6 minutes after the release build; more if it waits for
#                           other work on the machine to stop, see QUIET_WAIT)
# Environment (defaults in brackets):
#   PGURL        [postgres://iap:iap@127.0.0.1:5432]  role with CREATEDB; loopback only
#   PG_BENCH_DB  [iap_bench_pgbench]   PG_SIDECAR_DB [iap_bench_sidecar]  (dropped, recreated)
#   PHASE_SECS [12]  WARMUP_SECS [3]  CLIENTS [32]  ACCOUNTS [1000]  PGBENCH_SCALE [10]
#   POOL_SIZE [32]  (sidecar database.pool_size)   LOG_LEVEL [info] (sidecar log.level)
#   PGSSLMODE [libpq's default, prefer]  applies to psql, pgbench and the sidecar alike
#   OUT [target/bench]  where databases, logs and JSON results go
#   PROFILE_STATEMENTS [auto]  0 to skip the statement-logging phase (needs root)
#   SKIP_BUILD [0]  1 to reuse target/release as it is
#   QUIET_WAIT [120]  seconds to wait, before each phase, for the machine to be idle
# Not part of CI. Needs: cargo, PostgreSQL server + client (psql, pgbench), python3.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

PGURL=${PGURL:-postgres://iap:iap@127.0.0.1:5432}
PG_BENCH_DB=${PG_BENCH_DB:-iap_bench_pgbench}
PG_SIDECAR_DB=${PG_SIDECAR_DB:-iap_bench_sidecar}
PHASE_SECS=${PHASE_SECS:-12}
WARMUP_SECS=${WARMUP_SECS:-3}
CLIENTS=${CLIENTS:-32}
ACCOUNTS=${ACCOUNTS:-1000}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
POOL_SIZE=${POOL_SIZE:-32}
LOG_LEVEL=${LOG_LEVEL:-info}
OUT=${OUT:-target/bench}
PROFILE_STATEMENTS=${PROFILE_STATEMENTS:-auto}
SKIP_BUILD=${SKIP_BUILD:-0}
QUIET_WAIT=${QUIET_WAIT:-120}
BIN=target/release

say() { printf '\n== %s\n' "$*"; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

# --- PostgreSQL URL: postgres://user[:password]@host[:port][/ignored]
scheme=${PGURL%%://*}
[[ $scheme == postgres || $scheme == postgresql ]] || die "PGURL must start with postgres://"
rest=${PGURL#*://}
authority=${rest%%/*}
PG_BASE="$scheme://$authority"
hostport=${authority##*@}
if [[ $hostport == \[* ]]; then pg_host=${hostport%%]*}; pg_host=${pg_host#[}; else pg_host=${hostport%%:*}; fi
pg_port=5432
[[ $hostport =~ :([0-9]+)$ ]] && pg_port=${BASH_REMATCH[1]}
case $pg_host in
    127.*|localhost|::1) ;;
    *) die "PGURL host $pg_host is not a loopback address: this benchmark only runs on this machine" ;;
esac

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.json "$OUT"/*.txt "$OUT"/*.log "$OUT"/*.pg "$OUT"/*.snap

SIDECAR_PID=
LOG_STATEMENT_SET=0
# SQL as the postgres superuser (root only), read from stdin to keep quoting simple.
pg_superuser() { printf '%s;\n' "$1" | su postgres -c "psql -XqAt -v ON_ERROR_STOP=1"; }
cleanup() {
    if [[ -n $SIDECAR_PID ]]; then
        kill -TERM "$SIDECAR_PID" 2>/dev/null || true
        wait "$SIDECAR_PID" 2>/dev/null || true
    fi
    if [[ $LOG_STATEMENT_SET == 1 ]]; then
        pg_superuser "ALTER DATABASE \"$PG_SIDECAR_DB\" RESET log_statement" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# CPU busy % of the whole machine between two `head -n 1 /proc/stat` lines.
busy_between() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); total = 0; idle = 0
        for (i = 2; i <= 9 && i <= n; i++) { d = y[i] - x[i]; total += d; if (i == 5 || i == 6) idle += d }
        printf "%d", (total > 0 ? 100 * (total - idle) / total : 0) }'
}

# Other builds or tests on a small machine distort every figure: before each phase, wait
# (at most QUIET_WAIT seconds) until the machine is under 20 % busy over 3 seconds.
wait_quiet() {
    local waited=0 a b busy
    while :; do
        a=$(head -n 1 /proc/stat); sleep 3; b=$(head -n 1 /proc/stat)
        busy=$(busy_between "$a" "$b")
        ((busy < 20)) && return 0
        if ((waited >= QUIET_WAIT)); then
            echo "warning: the machine is still ${busy}% busy after ${waited} s of waiting; measuring anyway"
            return 0
        fi
        echo "machine ${busy}% busy before the phase: waiting"
        sleep 2
        waited=$((waited + 5))
    done
}

# cpu_snap FILE: the machine's CPU line and every process's CPU seconds, as JSON. A
# process's figure includes its children that it has waited for (cutime, cstime): the
# backends of one pgbench run end before the second snapshot, and their time is then the
# postmaster's; pgbench and sqlite_baseline end up in this script's shell ($$).
cpu_snap() {
    python3 - "$1" <<'PY'
import json, os, sys
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    f = s[s.rfind(")") + 2:].split()
    procs[pid] = [s[s.find("(") + 1:s.rfind(")")], sum(int(x) for x in f[11:15]) / 100]
cpu = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
json.dump({"cpu": cpu, "procs": procs}, open(sys.argv[1], "w"))
PY
}

# cpu_check NAME BEFORE AFTER OURS...: prints CPU cores by command between two snapshots and
# warns when processes other than OURS (command names, or pid:N) and the kernel's took a
# noticeable share.
cpu_check() {
    python3 - "$@" <<'PY'
import json, os, sys
name, a, b, ours = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), tuple(sys.argv[4:])
ticks = [y - x for x, y in zip(a["cpu"], b["cpu"])]
secs = sum(ticks) / 100 / os.cpu_count()
busy = (sum(ticks) - ticks[3] - ticks[4]) / 100 / secs
by = {}
our_pids = {o[4:] for o in ours if o.startswith("pid:")}
for pid, (comm, cpu) in b["procs"].items():
    d = cpu - a["procs"].get(pid, [comm, 0.0])[1]
    if d > 0:
        k = "kworker" if comm.startswith("kworker") else comm
        k = "this script" if pid in our_pids else k
        by[k] = by.get(k, 0.0) + d / secs
ours = tuple(o for o in ours if not o.startswith("pid:")) + ("this script",)
kernel = ("kworker", "ksoftirqd", "jbd2", "rcu", "irq", "migration", "kdamond")
foreign = busy - sum(v for k, v in by.items() if k.startswith(ours + kernel))
top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:6])
print(f"  {name}: machine {busy:.2f} cores busy; by command: {top}")
if foreign > 0.2:
    print(f"  WARNING: about {foreign:.2f} cores went to other processes during {name}: "
          "its figures are disturbed (rerun on a quiet machine)")
PY
}

# ------------------------------------------------------------------------------ machine
say "machine"
pg_version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
{
    echo "cores: $(nproc)"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel: $(uname -r)"
    echo "disk ($OUT): $(df -hT "$OUT" | awk 'NR == 2 { print $2 " on " $1 ", " $3 }')"
    echo "postgresql: ${pg_version:-none found}; client sslmode ${PGSSLMODE:-prefer (libpq default)}"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# -------------------------------------------------------------------------------- build
if [[ $SKIP_BUILD != 1 ]]; then
    say "build (cargo build --release --bins)"
    cargo build --release --bins
fi
for b in iap-sidecar loadgen sqlite_baseline; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing: build with cargo build --release --bins"
done

# --------------------------------------------------------------------------- PostgreSQL
say "PostgreSQL at $pg_host:$pg_port"
PG_BIN=/usr/lib/postgresql/$pg_version/bin
PGBENCH=$(command -v pgbench || echo "$PG_BIN/pgbench")
[[ -x $PGBENCH ]] || die "pgbench not found (postgresql-client / postgresql-contrib)"
if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
    [[ -n $pg_version ]] || die "no PostgreSQL server installed and none answering"
    echo "starting cluster $pg_version/main"
    pg_ctlcluster "$pg_version" main start
fi
psql_admin() { psql "$PG_BASE/postgres" -XqAt -v ON_ERROR_STOP=1 "$@"; }
psql_admin -c "SELECT 'server ' || version()" | tee -a "$OUT/machine.txt"
psql_admin -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
               WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'commit_delay',
                              'shared_buffers', 'max_connections', 'full_page_writes')" \
    | sed 's/^/settings: /' | tee -a "$OUT/machine.txt"
for db in "$PG_BENCH_DB" "$PG_SIDECAR_DB"; do
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
    psql_admin -c "CREATE DATABASE \"$db\""
done

# Counters of one database plus the cluster's WAL statistics (flushed by backends as they
# disconnect: read before a sidecar starts and after it stopped).
pg_snap() { # DB FILE
    psql "$PG_BASE/$1" -XqAt -F' ' -c "SELECT d.xact_commit, d.tup_inserted, d.tup_updated,
            d.tup_deleted, w.wal_sync, w.wal_records, w.wal_bytes
        FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()" >>"$2"
}

say "pgbench -i -s $PGBENCH_SCALE; pgbench -b tpcb-like -c 32 -j 2 -T $PHASE_SECS"
"$PGBENCH" -i -q -s "$PGBENCH_SCALE" "$PG_BASE/$PG_BENCH_DB" >"$OUT/pgbench-init.log" 2>&1 \
    || { cat "$OUT/pgbench-init.log"; die "pgbench -i failed"; }
wait_quiet
pg_snap "$PG_BENCH_DB" "$OUT/pgbench.pg"
cpu_snap "$OUT/cpu-before.snap"
"$PGBENCH" -b tpcb-like -c 32 -j 2 -T "$PHASE_SECS" "$PG_BASE/$PG_BENCH_DB" >"$OUT/pgbench.txt" 2>&1 \
    || { cat "$OUT/pgbench.txt"; die "pgbench failed"; }
cpu_snap "$OUT/cpu-after.snap"
cpu_check pgbench "$OUT/cpu-before.snap" "$OUT/cpu-after.snap" postgres pgbench "pid:$$" \
    | tee "$OUT/pgbench-cpu.txt"
sleep 1
pg_snap "$PG_BENCH_DB" "$OUT/pgbench.pg"
grep -E '^(number of transactions actually processed|latency average|tps)' "$OUT/pgbench.txt"

# ----------------------------------------------------------------------- SQLite baseline
for threads in 1 32; do
    say "raw SQLite: UPDATE + INSERT per durable commit, WAL, synchronous=FULL, $threads thread(s)"
    wait_quiet
    cpu_snap "$OUT/cpu-before.snap"
    "$BIN/sqlite_baseline" --path "$OUT/baseline.db" --threads "$threads" --accounts "$ACCOUNTS" \
        --duration "$PHASE_SECS" --warmup 1 --json >"$OUT/sqlite-raw-$threads.json"
    cpu_snap "$OUT/cpu-after.snap"
    cpu_check "raw SQLite, $threads thread(s)" "$OUT/cpu-before.snap" "$OUT/cpu-after.snap" \
        sqlite_baselin "pid:$$" | tee "$OUT/sqlite-raw-$threads-cpu.txt"
    python3 - "$OUT/sqlite-raw-$threads.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_ms"]
print(f"{r['commits_per_sec']} commits/s; commit latency p50 {l['p50']} ms, p99 {l['p99']} ms, max {l['max']} ms; {r['errors']} errors")
PY
done
rm -f "$OUT"/baseline.db*

# -------------------------------------------------------------------------- the sidecar
# start_sidecar DATABASE_URL NAME: serves on a free loopback port; sets SIDECAR_PID, SIDECAR_URL.
start_sidecar() {
    local out="$OUT/sidecar-$2.out"
    IAP_SIDECAR__HTTP__BIND=127.0.0.1:0 \
    IAP_SIDECAR__DATABASE__URL="$1" \
    IAP_SIDECAR__DATABASE__POOL_SIZE="$POOL_SIZE" \
    IAP_SIDECAR__DATABASE__SQLITE_SYNCHRONOUS=full \
    IAP_SIDECAR__LOG__LEVEL="$LOG_LEVEL" \
        "$BIN/iap-sidecar" serve >"$out" 2>"$OUT/sidecar-$2.log" &
    SIDECAR_PID=$!
    SIDECAR_URL=
    for _ in $(seq 1 300); do
        SIDECAR_URL=$(grep -o 'http://[0-9.:]*' "$out" 2>/dev/null | head -n 1 || true)
        [[ -n $SIDECAR_URL ]] && return 0
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 20 "$OUT/sidecar-$2.log"; die "the sidecar did not start"; }
        sleep 0.1
    done
    die "the sidecar did not print its address within 30 s"
}

stop_sidecar() {
    kill -TERM "$SIDECAR_PID"
    wait "$SIDECAR_PID" || true
    SIDECAR_PID=
}

# phase BACKEND NAME DATABASE_URL [loadgen run options...]: one load on a fresh sidecar.
phase() {
    local backend=$1 name=$2 url=$3
    shift 3
    local label="$backend-$name"
    wait_quiet
    [[ $backend == pg ]] && pg_snap "$PG_SIDECAR_DB" "$OUT/$label.pg"
    start_sidecar "$url" "$label"
    "$BIN/loadgen" run --url "$SIDECAR_URL" --key "$KEY" --concurrency "$CLIENTS" \
        --duration "$PHASE_SECS" --warmup "$WARMUP_SECS" --pid "$SIDECAR_PID" --json "$@" \
        >"$OUT/$label.json" || { cat "$OUT/$label.json"; die "loadgen failed ($label)"; }
    stop_sidecar
    [[ $backend == pg ]] && { sleep 0.5; pg_snap "$PG_SIDECAR_DB" "$OUT/$label.pg"; }
    python3 - "$OUT/$label.json" "$label" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
c, l, s = r["charges"], r["latency_ms"], r["sidecar"]
errors = ", ".join(f"{e['count']} {e['call']} {e['name']}" for e in r["errors"]) or "none"
print(f"{sys.argv[2]}: {c['per_sec']} charges/s ({c['ok']} in {r['elapsed_secs']} s); "
      f"charge p50 {l['charge']['p50']} p99 {l['charge']['p99']} max {l['charge']['max']} ms; "
      f"errors: {errors}")
print(f"  authorize p50/p99 {l['authorize']['p50']}/{l['authorize']['p99']} ms, "
      f"capture p50/p99 {l['capture']['p50']}/{l['capture']['p99']} ms; "
      f"sidecar VmRSS {s['vm_rss_kib'] / 1024:.1f} MiB, VmHWM {s['vm_hwm_kib'] / 1024:.1f} MiB, "
      f"{s['cpu_cores']} cores; machine {r['machine']['cpu_busy_pct']}% busy")
print("  CPU cores by command: " + ", ".join(
    f"{c['command']} {c['cores']}" for c in r["machine"]["cpu_cores_by_command"]))
ours = ("iap-sidecar", "postgres", "loadgen", "kworker", "ksoftirqd", "jbd2", "rcu", "irq", "migration", "kdamond")
busy = (r["machine"]["cpu_busy_pct"] or 0) / 100 * os.cpu_count()
foreign = busy - sum(c["cores"] for c in r["machine"]["cpu_cores_by_command"]
                     if c["command"].startswith(ours))
if foreign > 0.2:
    print(f"  WARNING: about {foreign:.2f} cores went to other processes during this phase: "
          "its figures are disturbed (rerun on a quiet machine)")
PY
}

peak_rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["charges"]["per_sec"] / 2, 1))' "$1"; }

backend_phases() { # BACKEND DATABASE_URL
    local backend=$1 url=$2
    say "sidecar on $backend: setup ($ACCOUNTS accounts)"
    KEY=$(IAP_SIDECAR__DATABASE__URL="$url" IAP_SIDECAR__LOG__LEVEL=warn \
        "$BIN/loadgen" setup --accounts "$ACCOUNTS" --grant 100000000)
    say "sidecar on $backend: uniform, $CLIENTS clients over $ACCOUNTS accounts"
    phase "$backend" uniform "$url" --accounts "$ACCOUNTS"
    say "sidecar on $backend: hot, $CLIENTS clients on 1 account"
    phase "$backend" hot "$url" --hot
    local half
    half=$(peak_rate "$OUT/$backend-uniform.json")
    say "sidecar on $backend: uniform at half the peak ($half charges/s scheduled)"
    phase "$backend" half "$url" --accounts "$ACCOUNTS" --rate "$half"
}

PG_SIDECAR_URL="$PG_BASE/$PG_SIDECAR_DB"
backend_phases pg "$PG_SIDECAR_URL"
PG_KEY=$KEY

rm -f "$OUT"/sidecar.db*
backend_phases sqlite "sqlite://$OUT/sidecar.db"

# ------------------------------------------------- statements per charge (PostgreSQL log)
if [[ $PROFILE_STATEMENTS == auto ]]; then
    PROFILE_STATEMENTS=0
    if [[ $(id -u) == 0 ]] && su postgres -c "psql -XqAtc 'SELECT 1'" >/dev/null 2>&1; then
        PROFILE_STATEMENTS=1
    fi
fi
pg_log=$(pg_lsclusters -h 2>/dev/null | awk -v p="$pg_port" '$3 == p { print $7 }' | head -n 1 || true)
if [[ $PROFILE_STATEMENTS == 1 && -n $pg_log && -r $pg_log ]]; then
    say "statements per charge: log_statement = all on $PG_SIDECAR_DB, 1 client, 300 charges"
    pg_superuser "ALTER DATABASE \"$PG_SIDECAR_DB\" SET log_statement = 'all'"
    LOG_STATEMENT_SET=1
    KEY=$PG_KEY
    start_sidecar "$PG_SIDECAR_URL" pg-profile
    sleep 0.5
    offset=$(stat -c %s "$pg_log")
    "$BIN/loadgen" run --url "$SIDECAR_URL" --key "$KEY" --concurrency 1 --charges 300 \
        --accounts "$ACCOUNTS" --duration 60 --warmup 0 --cancel-ratio 0 --json >"$OUT/pg-profile.json"
    sleep 0.5
    tail -c +"$((offset + 1))" "$pg_log" >"$OUT/pg-statements.log"
    stop_sidecar
    pg_superuser "ALTER DATABASE \"$PG_SIDECAR_DB\" RESET log_statement"
    LOG_STATEMENT_SET=0
else
    say "statements per charge: skipped (needs root, su postgres and a readable server log)"
fi

# ------------------------------------------------------------------------------ summary
say "summary"
python3 - "$OUT" "$CLIENTS" "$ACCOUNTS" "$PHASE_SECS" <<'PY'
import json, os, re, sys

out, clients, accounts, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None

def pg_delta(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    rows = [list(map(int, l.split())) for l in open(path) if l.strip()]
    if len(rows) < 2:
        return None
    keys = ["commits", "inserted", "updated", "deleted", "wal_syncs", "wal_records", "wal_bytes"]
    return dict(zip(keys, (b - a for a, b in zip(rows[0], rows[-1]))))

pgbench = open(os.path.join(out, "pgbench.txt")).read()
tps = float(re.search(r"tps = ([0-9.]+)", pgbench).group(1))
pgbench_tx = int(re.search(r"actually processed: (\d+)", pgbench).group(1))
pgbench_lat = float(re.search(r"latency average = ([0-9.]+) ms", pgbench).group(1))
pgb = pg_delta("pgbench.pg")
raw = {t: load(f"sqlite-raw-{t}.json") for t in (1, 32)}
raw_best = max(r["commits_per_sec"] for r in raw.values())

rows = []
def line(label, value, note=""):
    rows.append((label, value, note))
    print(f"{label:<62} {value:>12}  {note}")

def fmt(x, nd=1):
    return f"{x:,.{nd}f}"

print(f"{clients} clients, {secs} s measured per phase; uniform = {accounts} accounts, hot = 1 account\n")
def disturbed(name):
    path = os.path.join(out, name)
    if os.path.exists(path) and "WARNING" in open(path).read():
        return "; DISTURBED by other processes"
    return ""
line("pgbench tpcb-like TPS (32 clients, -j 2)", fmt(tps),
     f"latency avg {pgbench_lat} ms{disturbed('pgbench-cpu.txt')}")
line("raw SQLite durable commits/s, 1 thread", fmt(raw[1]["commits_per_sec"]),
     f"p99 {raw[1]['latency_ms']['p99']} ms, max {raw[1]['latency_ms']['max']} ms, "
     f"{raw[1]['errors']} errors{disturbed('sqlite-raw-1-cpu.txt')}")
line("raw SQLite durable commits/s, 32 threads", fmt(raw[32]["commits_per_sec"]),
     f"p99 {raw[32]['latency_ms']['p99']} ms, max {raw[32]['latency_ms']['max']} ms, "
     f"{raw[32]['errors']} errors (busy timeout){disturbed('sqlite-raw-32-cpu.txt')}")
results = {}
for backend, name in (("pg", "PostgreSQL"), ("sqlite", "SQLite")):
    for phase in ("uniform", "hot", "half"):
        r = load(f"{backend}-{phase}.json")
        results[(backend, phase)] = r
        if r is None:
            continue
        l = r["latency_ms"]
        what = {"uniform": "uniform", "hot": "hot (1 account)",
                "half": f"half peak ({r['config']['rate']}/s)"}[phase]
        errs = sum(e["count"] for e in r["errors"])
        line(f"sidecar on {name}, {what}: charges/s", fmt(r["charges"]["per_sec"]),
             f"charge p50 {l['charge']['p50']} p99 {l['charge']['p99']} max {l['charge']['max']} ms; "
             f"{errs} errors")

print()
pu, ph = results[("pg", "uniform")], results[("pg", "hot")]
su_, sh = results[("sqlite", "uniform")], results[("sqlite", "hot")]
ratio = lambda a, b: f"{a / b:.2f}x" if b else "n/a"
line("PostgreSQL: sidecar uniform / pgbench TPS", ratio(pu["charges"]["per_sec"], tps), "target >= 1.0x")
line("PostgreSQL: hot / uniform", ratio(ph["charges"]["per_sec"], pu["charges"]["per_sec"]))
line("SQLite: sidecar uniform / raw commits (best of 1, 32 threads)",
     ratio(su_["charges"]["per_sec"], raw_best), "target >= 1.0x")
line("SQLite: sidecar uniform / raw commits (32 threads)",
     ratio(su_["charges"]["per_sec"], raw[32]["commits_per_sec"]))
line("SQLite: hot / uniform", ratio(sh["charges"]["per_sec"], su_["charges"]["per_sec"]))
for backend, name in (("pg", "PostgreSQL"), ("sqlite", "SQLite")):
    h = results[(backend, "half")]
    if h:
        l = h["latency_ms"]
        line(f"{name}: p99 at half peak ({h['charges']['per_sec']}/s achieved)",
             f"{l['charge']['p99']} ms",
             f"authorize {l['authorize']['p99']} ms, capture {l['capture']['p99']} ms")

print()
for backend, name in (("pg", "PostgreSQL"), ("sqlite", "SQLite")):
    for phase in ("uniform", "hot", "half"):
        r = results[(backend, phase)]
        if r:
            s = r["sidecar"]
            line(f"{name} {phase}: sidecar VmHWM / VmRSS under load",
                 f"{s['vm_hwm_kib'] / 1024:.1f} MiB", f"VmRSS {s['vm_rss_kib'] / 1024:.1f} MiB")
print()
for backend, name in (("pg", "PostgreSQL"), ("sqlite", "SQLite")):
    for phase in ("uniform", "hot", "half"):
        r = results[(backend, phase)]
        if r:
            s, m = r["sidecar"], r["machine"]
            top = ", ".join(f"{c['command']} {c['cores']}" for c in m["cpu_cores_by_command"][:4])
            busy = (m["cpu_busy_pct"] or 0) / 100 * os.cpu_count()
            foreign = busy - sum(c["cores"] for c in m["cpu_cores_by_command"] if c["command"].startswith(
                ("iap-sidecar", "postgres", "loadgen", "kworker", "ksoftirqd", "jbd2", "rcu", "irq", "migration", "kdamond")))
            flag = f"; DISTURBED: ~{foreign:.2f} cores used by other processes" if foreign > 0.2 else ""
            line(f"{name} {phase}: sidecar CPU ms per charge", f"{s['cpu_ms_per_charge']}",
                 f"machine {m['cpu_busy_pct']}% busy; cores: {top}{flag}")

print()
if pgb:
    line("pgbench: WAL flushes per transaction", f"{pgb['wal_syncs'] / pgbench_tx:.2f}",
         f"{pgb['wal_records'] / pgbench_tx:.1f} WAL records, {pgb['wal_bytes'] / pgbench_tx:.0f} bytes")
for phase in ("uniform", "hot", "half"):
    d, r = pg_delta(f"pg-{phase}.pg"), results[("pg", phase)]
    if d and r:
        n = r["charges"]["all_ok"] + r["charges"]["all_failed"]
        line(f"PostgreSQL {phase}: per charge: commits, WAL flushes", 
             f"{d['commits'] / n:.2f}, {d['wal_syncs'] / n:.2f}",
             f"rows inserted {d['inserted'] / n:.2f}, updated {d['updated'] / n:.2f}, "
             f"deleted {d['deleted'] / n:.2f}; {d['wal_records'] / n:.1f} WAL records, "
             f"{d['wal_bytes'] / n:.0f} bytes")

prof = load("pg-profile.json")
log_path = os.path.join(out, "pg-statements.log")
if prof and os.path.exists(log_path):
    n = prof["charges"]["all_ok"] + prof["charges"]["all_failed"]
    counts = {}
    pat = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s+(.*)$")
    for l in open(log_path, errors="replace"):
        m = pat.search(l)
        if m:
            text = m.group(1).strip()
            # r2d2 checks every connection it hands out with this query.
            k = "SELECT 1" if text == "SELECT 1" else text.split()[0].upper()
            counts[k] = counts.get(k, 0) + 1
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    print()
    line("PostgreSQL: SQL statements per charge (1 client)", f"{total / n:.2f}", detail)
    if prof["charges"]["all_failed"]:
        print(f"  (warning: {prof['charges']['all_failed']} of {n} charges failed in that phase)")

json.dump({"rows": rows}, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
echo
echo "results, logs and JSON reports: $OUT"
