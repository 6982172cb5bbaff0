#!/usr/bin/env bash
# Real Odoo 17.0, 18.0 and 19.0 in CI (called by .ci/run once `cargo test` has built the
# debug binary). Per series, with ../shared/odoo/odoo.sh:
#   1. a fresh database; the addon (odoo_addon/SERIES) installed alone, its install log
#      must hold no WARNING/ERROR line of its own;
#   2. the addon's tests in Odoo's runner (--test-enable --test-tags /iap_sidecar, browser
#      tests included), with odoo_addon/tests_real/addons/iap_sidecar_provider_example (a
#      provider module importing iap_sidecar.tools.iap_provider): 0 failed, 0 errors,
#      0 skipped, read from the log;
#   3. a server of that series started once on that database, then
#      odoo_addon/tests_real/run_suite.py (with the sidecar it starts) and
#      `cargo test --test backends -- odoo` against it (ODOO_URL...);
#   4. Odoo's own SMS: a second database iap_ci_sms<N> with the `sms` module, served alone
#      by a second server (`--db-filter`: the sidecar's delivery reports to /sms/status
#      name no database), and tests/odoo_sms/sms_suite.py against it (its own sidecar
#      and SMSC, tests/sms/smsc.py).
# The three series run side by side (Odoo is mostly one busy thread each); one cargo
# build serves all. Without ../shared/odoo (a clone outside this project's CI) it prints
# a "skipped:" line; when it is there, any failure fails CI.
#
# Environment: ODOO_SERIES (default "17.0 18.0 19.0"), IAP_SIDECAR_BIN (default the
# debug build), IAP_SIDECAR_TEST_PG_URL (passed to the Rust tests).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."
root=$PWD
odoo_sh=$(cd .. && pwd)/shared/odoo/odoo.sh

if [ ! -d ../shared/odoo ]; then
    echo "skipped: real Odoo 17.0/18.0/19.0 tests: ../shared/odoo is absent (see README, Test)"
    exit 0
fi
[ -x "$odoo_sh" ] || { echo "FAIL: $odoo_sh is missing or not executable"; exit 1; }

started=$SECONDS
series_list=${ODOO_SERIES:-"17.0 18.0 19.0"}
out=$root/target/odoo-ci
rm -rf "$out"
mkdir -p "$out"
export IAP_SIDECAR_BIN=${IAP_SIDECAR_BIN:-$root/target/debug/iap-sidecar}
export CI=${CI:-true}

# One build for every series: the binary the addon's tests and run_suite.py start, and
# the Rust test binary (built now so the series do not queue on cargo's lock).
cargo build --bin iap-sidecar
cargo test --test backends --no-run
[ -x "$IAP_SIDECAR_BIN" ] || { echo "FAIL: no sidecar binary at $IAP_SIDECAR_BIN"; exit 1; }

for series in $series_list; do
    "$odoo_sh" setup "$series" >"$out/setup-$series.log" 2>&1 \
        || { cat "$out/setup-$series.log"; echo "FAIL: odoo.sh setup $series"; exit 1; }
done

# WARNING/ERROR lines of a log, leaving out the ones the cut-down Odoo trees print for
# their manifest-only stub addons (every module list update on 19.0), which are not ours.
own_problems() {
    grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (WARNING|ERROR|CRITICAL) ' "$1" \
        | grep -vP "Missing \`author\` key in manifest for '(?!iap_sidecar)[a-z0-9_]+'" || true
}

# run_series SERIES PORT: every step for one series; its summary goes to $out/SERIES.result.
run_series() {
    local series=$1 port=$2 t0=$SECONDS n=${1%.0}
    local db=iap_ci_odoo$n addons=$root/odoo_addon/$series log=$out/$series
    local result=$out/$series.result pid=""
    : >"$result"
    say() { echo "[$series] $*" | tee -a "$result"; }
    # Servers run in a process group of their own (odoo.sh's setsid, or ours): stop it all.
    stop() { [ -n "$pid" ] && { kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null; }; pid=""; }
    fail() { say "FAIL: $*"; stop; return 1; }

    PGPASSWORD=odoo dropdb -h 127.0.0.1 -U odoo --if-exists "$db" >/dev/null 2>&1 || true
    "$odoo_sh" init "$series" "$db" base,web,base_setup,iap,mail >"$log-init.out" 2>&1 \
        || fail "database $db not created (see $log-init.out)" || return 1

    # 1. Install alone, the way a user would: the series directory on the addons path.
    ODOO_ADDONS=$addons "$odoo_sh" run "$series" -d "$db" -i iap_sidecar \
        --stop-after-init --logfile "$log-install.log" >/dev/null 2>&1 \
        || fail "install of iap_sidecar (see $log-install.log)" || return 1
    local state
    state=$(PGPASSWORD=odoo psql -h 127.0.0.1 -U odoo -d "$db" -tAc \
        "SELECT state FROM ir_module_module WHERE name = 'iap_sidecar'")
    [ "$state" = installed ] || fail "iap_sidecar is '$state' after install, not installed" || return 1
    own_problems "$log-install.log" >"$log-install.problems"
    local problems all
    problems=$(wc -l <"$log-install.problems")
    all=$(grep -cE '^[0-9-]+ [0-9:,]+ [0-9]+ (WARNING|ERROR|CRITICAL) ' "$log-install.log" || true)
    say "install log: $problems WARNING/ERROR lines of the addon ($all in all, the rest from the tree's stub manifests)"
    [ "$problems" -eq 0 ] || { cat "$log-install.problems"; fail "install log not clean"; return 1; }

    # 2. The addon's tests in Odoo's runner, with a provider module that depends on it
    #    and imports iap_sidecar.tools.iap_provider (as providers do on 19).
    ODOO_ADDONS=$addons,$root/odoo_addon/tests_real/addons "$odoo_sh" run "$series" -d "$db" \
        -u iap_sidecar -i iap_sidecar_provider_example --test-enable \
        --test-tags /iap_sidecar,/iap_sidecar_provider_example --stop-after-init \
        --logfile "$log-tests.log" >/dev/null 2>&1 || true
    local summary skipped
    summary=$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests when loading database' \
        "$log-tests.log" | tail -n 1)
    skipped=$(grep -cE ' INFO \S+ \S+: skipped ' "$log-tests.log" || true)
    say "addon tests in Odoo's runner: ${summary:-no test summary}, $skipped skipped"
    [[ $summary =~ ^0\ failed,\ 0\ error\(s\)\ of\ ([0-9]+)\ tests ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] \
        && [ "$skipped" -eq 0 ] \
        || { grep -E ' (ERROR|CRITICAL) ' "$log-tests.log" | tail -n 20; fail "addon tests (see $log-tests.log)"; return 1; }

    # 3. A running server of the series: the real-Odoo suite, then the Rust tests.
    pid=$("$odoo_sh" start "$series" "$port" "$addons" 2>"$log-start.err") \
        || fail "server on port $port did not start (see $log-start.err)" || return 1
    export ODOO_URL=http://127.0.0.1:$port ODOO_DB=$db ODOO_USER=admin ODOO_PASSWORD=admin
    python3 odoo_addon/tests_real/run_suite.py >"$log-suite.log" 2>&1 || true
    local suite
    suite=$(grep -E '^addon-suite: ' "$log-suite.log" | tail -n 1)
    say "run_suite.py: ${suite:-no result line}"
    [[ $suite =~ ^addon-suite:\ [0-9]+\ passed,\ 0\ failed,\ 0\ skipped$ ]] \
        || { grep -E '^(FAIL|SKIP)' "$log-suite.log"; fail "run_suite.py (see $log-suite.log)"; return 1; }

    cargo test --test backends -- odoo >"$log-cargo.log" 2>&1 || true
    local cargo_result
    cargo_result=$(grep -E '^test result: ' "$log-cargo.log" | tail -n 1)
    say "cargo test --test backends -- odoo: ${cargo_result:-no result line}"
    [[ $cargo_result =~ ^test\ result:\ ok\.\ [1-9][0-9]*\ passed\;\ 0\ failed\;\ 0\ ignored ]] \
        || { grep -E '^(test |---- |thread )' "$log-cargo.log" | grep -v ' ok$' | head -n 30; fail "Rust real-Odoo tests (see $log-cargo.log)"; return 1; }

    stop

    # 4. Odoo's SMS through the sidecar: the stock sms module, a second database.
    local sms_db=iap_ci_sms$n sms_port=$((port + 1)) t4=$SECONDS
    PGPASSWORD=odoo dropdb -h 127.0.0.1 -U odoo --if-exists "$sms_db" >/dev/null 2>&1 || true
    "$odoo_sh" init "$series" "$sms_db" base,web,base_setup,iap,mail,sms >"$log-sms-init.out" 2>&1 \
        || fail "database $sms_db not created (see $log-sms-init.out)" || return 1
    setsid "$odoo_sh" run "$series" -d "$sms_db" --db-filter "^$sms_db\$" \
        --http-port "$sms_port" --logfile "$log-sms-server.log" >"$log-sms-server.out" 2>&1 </dev/null &
    pid=$!
    local up=""
    for _ in $(seq 240); do
        kill -0 "$pid" 2>/dev/null || break
        curl -fs -o /dev/null "http://127.0.0.1:$sms_port/web/webclient/version_info" \
            -H 'Content-Type: application/json' -d '{}' && { up=1; break; }
        sleep 0.5
    done
    [ -n "$up" ] || fail "SMS server on port $sms_port did not start (see $log-sms-server.log)" || return 1
    ODOO_URL=http://127.0.0.1:$sms_port ODOO_DB=$sms_db ODOO_USER=admin ODOO_PASSWORD=admin \
        python3 tests/odoo_sms/sms_suite.py >"$log-sms-suite.log" 2>&1 || true
    local sms_suite
    sms_suite=$(grep -E '^sms-suite: ' "$log-sms-suite.log" | tail -n 1)
    say "sms_suite.py: ${sms_suite:-no result line} ($((SECONDS - t4)) s with the database)"
    [[ $sms_suite =~ ^sms-suite:\ [1-9][0-9]*\ passed,\ 0\ failed,\ 0\ skipped$ ]] \
        || { grep -E '^(FAIL|SKIP)' "$log-sms-suite.log"; fail "sms_suite.py (see $log-sms-suite.log)"; return 1; }
    stop
    say "done in $((SECONDS - t0)) s"
}

pids=()
port=18170
for series in $series_list; do
    run_series "$series" "$port" &
    pids+=("$!")
    port=$((port + 10))
done
status=0
for p in "${pids[@]}"; do
    wait "$p" || status=1
done

echo "== real Odoo summary"
for series in $series_list; do
    cat "$out/$series.result"
done
echo "real Odoo block: $((SECONDS - started)) s for ${series_list// /, }"
exit $status
