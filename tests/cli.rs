//! Black-box tests of the real binary: configuration, CLI commands, serving on port 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_iap-sidecar");

/// The binary with a private SQLite file and a clean environment.
fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("IAP_SIDECAR_CONFIG")
        .env(
            "IAP_SIDECAR__DATABASE__URL",
            format!("sqlite://{}", dir.join("ledger.db").display()),
        )
        .env("IAP_SIDECAR__LOG__LEVEL", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("IAP_SIDECAR__") && key != "IAP_SIDECAR__DATABASE__URL" {
            c.env_remove(key);
        }
    }
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cmd(dir).args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// Starts `serve` on port 0 and returns the child and the address it printed.
fn serve(dir: &Path) -> (Child, String) {
    let mut child = cmd(dir)
        .arg("serve")
        .env("IAP_SIDECAR__HTTP__BIND", "127.0.0.1:0")
        .env("IAP_SIDECAR__LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, addr)
}

#[test]
fn serve_binds_port_0_answers_health_and_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr) = serve(dir.path());
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(
        dir.path().join("ledger.db").exists(),
        "database file created"
    );

    iap_sidecar::tls::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (status, body, request_id) = rt.block_on(async {
        let r = reqwest::get(format!("http://{addr}/health"))
            .await
            .expect("health");
        let id = r
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.expect("json"),
            id,
        )
    });
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "sqlite");
    assert!(request_id.is_some_and(|id| !id.is_empty()));

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let output = child.wait_with_output().expect("exit");
    assert!(output.status.success(), "exit status {:?}", output.status);
    assert!(stderr(&output).contains("stopped"), "{}", stderr(&output));
}

#[test]
fn a_bad_setting_fails_at_start_naming_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "IAP_SIDECAR__HTTP__MAX_BODY_BYTES",
            "lots",
            "max_body_bytes",
        ),
        ("IAP_SIDECAR__HTTP__BIND", "localhost", "http.bind"),
        ("IAP_SIDECAR__DATABASE__URL", "mysql://x/y", "database.url"),
        (
            "IAP_SIDECAR__DATABASE__SQLITE_SYNCHRONOUS",
            "off",
            "database.sqlite_synchronous",
        ),
        (
            "IAP_SIDECAR__DATABASE__SQLITE_WAL_AUTOCHECKPOINT",
            "10",
            "database.sqlite_wal_autocheckpoint",
        ),
        (
            "IAP_SIDECAR__LEDGER__MAX_HOLD_TTL_HOURS",
            "0",
            "ledger.max_hold_ttl_hours",
        ),
        ("IAP_SIDECAR__HTTP__NO_SUCH_KEY", "1", "no_such_key"),
        ("IAP_SIDECAR__SMTP__SECURITY", "ssl3", "smtp.security"),
        ("IAP_SIDECAR__SMTP__FROM", "not an address", "smtp.from"),
        ("IAP_SIDECAR__SMTP__USERNAME", "alice", "smtp.username"),
    ];
    for (key, value, named) in cases {
        let o = cmd(dir.path())
            .arg("migrate")
            .env(key, value)
            .output()
            .expect("runs");
        assert!(!o.status.success(), "{key}={value} accepted");
        assert!(stderr(&o).contains(named), "{key}: {}", stderr(&o));
    }
}

#[test]
fn a_config_file_is_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sidecar.toml");
    std::fs::write(&file, "[ledger]\nsweep_interval_secs = 0\n").expect("write");
    let o = cmd(dir.path())
        .args(["--config", file.to_str().expect("path"), "migrate"])
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ledger.sweep_interval_secs"),
        "{}",
        stderr(&o)
    );

    let o = cmd(dir.path())
        .arg("migrate")
        .env("IAP_SIDECAR_CONFIG", dir.path().join("missing.toml"))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[test]
fn database_passwords_never_reach_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cmd(dir.path())
        .arg("migrate")
        .env(
            "IAP_SIDECAR__DATABASE__URL",
            "postgres://iap:hunter2@127.0.0.1:1/nowhere",
        )
        .env("IAP_SIDECAR__DATABASE__POOL_TIMEOUT_SECS", "1")
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("iap:***@127.0.0.1:1"), "{all}");
}

#[test]
fn operator_commands_register_grant_show_and_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let first = ok(d, &["migrate"]);
    assert!(
        first.contains("migration(s) applied") && !first.starts_with("0 "),
        "{first}"
    );
    assert!(ok(d, &["migrate"]).contains("0 migration(s) applied"));

    let added = ok(
        d,
        &[
            "service",
            "add",
            "sms",
            "--label",
            "SMS",
            "--trial-credits",
            "5",
        ],
    );
    let key = added
        .split("store it now): ")
        .nth(1)
        .expect("key")
        .trim()
        .to_owned();
    assert!(key.starts_with("iapkey_") && key.len() > 40, "{added}");
    let again = run(d, &["service", "add", "sms"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let list = ok(d, &["service", "list"]);
    assert!(list.contains("sms\tSMS"), "{list}");
    assert!(!list.contains(&key), "keys are shown once");

    assert!(ok(d, &["credit", "grant", "tok-1", "sms", "12.5"]).contains("balance 12.5"));
    let granted = ok(
        d,
        &[
            "credit",
            "grant",
            "tok-1+disabled",
            "sms",
            "0.0001",
            "--expires",
            "2999-01-01",
        ],
    );
    assert!(granted.contains("balance 12.5001"), "{granted}");
    let shown = ok(d, &["account", "show", "tok-1"]);
    assert!(
        shown.contains(" · disabled"),
        "+disabled disables the account: {shown}"
    );
    for bad in ["-1", "1.00001", "NaN", "1e3", "10000000000000"] {
        let o = run(d, &["credit", "grant", "tok-1", "sms", bad]);
        assert!(!o.status.success(), "{bad} accepted");
    }
    let past = run(
        d,
        &[
            "credit",
            "grant",
            "tok-1",
            "sms",
            "1",
            "--expires",
            "2001-01-01",
        ],
    );
    assert!(!past.status.success());
    assert!(
        stderr(&past).contains("not in the future"),
        "{}",
        stderr(&past)
    );
    let unknown = run(d, &["credit", "grant", "tok-1", "fax", "1"]);
    assert!(
        stderr(&unknown).contains("unknown service"),
        "{}",
        stderr(&unknown)
    );

    let shown = ok(d, &["account", "show", "tok-1"]);
    assert!(shown.contains("balance 12.5001 Credits"), "{shown}");
    assert!(
        !shown.contains(" · disabled"),
        "the plain token re-enabled it: {shown}"
    );
    assert!(shown.contains("#2"), "{shown}");
    let missing = run(d, &["account", "show", "nobody"]);
    assert!(!missing.status.success());

    let limited = ok(
        d,
        &[
            "service",
            "databases",
            "sms",
            "--only",
            "db-1",
            "--only",
            "db-2",
        ],
    );
    assert!(
        limited.contains("limited to 2 database(s)") && limited.contains("db-2"),
        "{limited}"
    );
    assert!(ok(d, &["service", "databases", "sms"]).contains("db-1"));
    assert!(ok(d, &["service", "databases", "sms", "--open"]).contains("open to every database"));

    let rotated = ok(d, &["service", "rotate-key", "sms"]);
    let new_key = rotated
        .split("(shown once): ")
        .nth(1)
        .expect("key")
        .lines()
        .next()
        .expect("line");
    assert_ne!(new_key, key);

    assert!(ok(d, &["alerts", "list"]).contains("no alerts"));
    assert!(
        !run(d, &["alerts", "list", "--status", "lost"])
            .status
            .success()
    );

    let token = ok(d, &["admin-token", "create", "ops"]);
    assert!(token.contains("iapadm_"), "{token}");
    assert!(ok(d, &["admin-token", "revoke", "ops"]).contains("revoked"));
    assert!(!run(d, &["admin-token", "revoke", "ops"]).status.success());
}

#[test]
fn registration_secrets_scoped_and_databases_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scoped = ok(
        d,
        &[
            "registration-secret",
            "create",
            "branch",
            "--dbuuid",
            "db-1",
            "--dbuuid",
            "db-2",
        ],
    );
    assert!(
        scoped.contains("iapreg_") && scoped.contains("it registers only: db-1, db-2"),
        "{scoped}"
    );
    let missing = run(d, &["database", "release", "db-1"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("not registered"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn operator_sells_packs_and_confirms_an_order_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(dir.path(), &["service", "add", "sms"]);
    let out = ok(
        dir.path(),
        &["pack", "add", "sms", "Standard", "100", "40", "EUR"],
    );
    assert!(
        out.contains("pack 1 of sms: Standard · 100 credits · 40.00 EUR"),
        "{out}"
    );
    let bad = run(
        dir.path(),
        &["pack", "add", "sms", "Odd", "10", "1.234", "EUR"],
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("at most 2 decimals"),
        "{}",
        stderr(&bad)
    );
    ok(dir.path(), &["credit", "grant", "tok-cli", "sms", "1"]);
    // Customers order on the portal; here the order is made through the library.
    let store = iap_sidecar::store::Store::connect(&iap_sidecar::config::DatabaseSettings {
        url: iap_sidecar::config::Secret::new(format!(
            "sqlite://{}",
            dir.path().join("ledger.db").display()
        )),
        ..Default::default()
    })
    .expect("store");
    let order = store
        .create_order(
            iap_sidecar::ledger::AccountId::from_stored(1),
            iap_sidecar::payments::PackId::from_stored(1),
        )
        .expect("order");
    let out = ok(
        dir.path(),
        &[
            "order",
            "confirm",
            &order.id.to_string(),
            "--reference",
            "bank-7",
        ],
    );
    assert!(out.contains("credited") && out.contains("lot 2"), "{out}");
    let out = ok(dir.path(), &["order", "confirm", &order.id.to_string()]);
    assert!(out.contains("already credited: nothing changed"), "{out}");
    let out = ok(dir.path(), &["account", "show", "tok-cli", "sms"]);
    assert!(out.contains("balance 101"), "{out}");
    let refused = run(dir.path(), &["order", "cancel", &order.id.to_string()]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("is credited"),
        "{}",
        stderr(&refused)
    );
    let out = ok(dir.path(), &["order", "list", "--status", "credited"]);
    assert!(out.contains(&format!("#{} credited", order.id)), "{out}");
    let out = ok(dir.path(), &["pack", "disable", "sms", "1"]);
    assert!(out.contains("off sale"), "{out}");
}

/// `iap-sidecar account show … | head` (issue 12, finding 10): a reader that goes away
/// ends the command quietly instead of a panic on the broken pipe.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(d, &["migrate"]);
    ok(d, &["service", "add", "sms", "--label", "SMS"]);
    ok(d, &["credit", "grant", "tok-pipe", "sms", "5"]);
    for args in [
        &["account", "show", "tok-pipe"][..],
        &["service", "list"][..],
    ] {
        // The pipe's reading end is closed before the command writes anything.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = cmd(d)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("binary runs");
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}

#[test]
fn backup_and_restore_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(dir.path(), &["service", "add", "sms"]);
    ok(dir.path(), &["credit", "grant", "tok-backup", "sms", "42"]);
    let backup = dir.path().join("copy.db");
    let backup = backup.to_str().expect("utf-8");
    let out = ok(dir.path(), &["backup", backup]);
    assert!(
        out.contains("integrity ok, ledger audit ok (1 accounts"),
        "{out}"
    );
    // Never over an existing file.
    let again = run(dir.path(), &["backup", backup]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    // Credits given after the backup are gone once it is restored.
    ok(dir.path(), &["credit", "grant", "tok-backup", "sms", "8"]);
    let refused = run(dir.path(), &["restore", backup]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert!(ok(dir.path(), &["account", "show", "tok-backup"]).contains("balance 50 "));
    let out = ok(dir.path(), &["restore", backup, "--force"]);
    assert!(out.contains("1 accounts"), "{out}");
    let shown = ok(dir.path(), &["account", "show", "tok-backup"]);
    assert!(shown.contains("balance 42 "), "{shown}");

    // A file that is not a database changes nothing.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").expect("write");
    let bad = run(
        dir.path(),
        &["restore", junk.to_str().expect("utf-8"), "--force"],
    );
    assert!(!bad.status.success());
    assert!(ok(dir.path(), &["account", "show", "tok-backup"]).contains("balance 42 "));
}
