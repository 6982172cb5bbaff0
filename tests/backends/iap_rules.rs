//! Protocol rules over real HTTP: service availability per database, trial credits, hold
//! lifetimes, partial captures, disabled tokens; and Odoo's own client code path (Python).

use std::process::Command;

use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::rpc::{INSUFFICIENT, Sidecar};
use crate::support::{Backend, HOUR};

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn balance(s: &Sidecar, token: &str, service: &str, db: &str) -> f64 {
    number(
        s.call(
            "/iap/1/balance",
            json!({"dbuuid": db, "account_token": token, "service_name": service}),
        )
        .result(),
    )
}

fn authorize(s: &Sidecar, key: &str, token: &str, credit: f64, extra: Value) -> crate::rpc::Answer {
    let mut params = json!({"account_token": token, "credit": credit, "key": key,
                            "description": "job", "ttl": 4320});
    if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
        p.extend(e);
    }
    s.call("/iap/1/authorize", params)
}

fn transaction(answer: &crate::rpc::Answer) -> String {
    answer
        .result()
        .as_str()
        .expect("a transaction token")
        .to_owned()
}

pub fn iap_service_rules(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start_with(backend, |settings| settings.ledger.max_hold_ttl_hours = 24)?;
    let sms = s.service("sms", "sms-key", Some((5, 30)));

    // Unknown token: reads 0 and registers nothing; the provider's first authorize
    // registers it, bound to its database, with the trial once per database.
    assert_eq!(balance(&s, "tok-a", "sms", "db-1"), 0.0);
    assert!(s.db.store.accounts_by_token(&tok("tok-a"))?.is_empty());
    let register = |token: &str, db: &str| {
        let tx = transaction(&authorize(&s, "sms-key", token, 1.0, json!({"dbuuid": db})));
        s.call("/iap/1/cancel", json!({"token": tx, "key": "sms-key"}))
            .result();
    };
    register("tok-a", "db-1");
    assert_eq!(balance(&s, "tok-a", "sms", "db-1"), 5.0);
    assert_eq!(balance(&s, "tok-a", "sms", "db-1"), 5.0, "trial given once");
    assert_eq!(
        balance(&s, "tok-b", "sms", "db-1"),
        0.0,
        "once per database, not per token"
    );
    register("tok-c", "db-2");
    assert_eq!(balance(&s, "tok-c", "sms", "db-2"), 5.0);
    assert_eq!(balance(&s, "tok-x", "no_such_service", "db-1"), 0.0);
    let lots =
        s.db.store
            .lots(s.db.store.accounts_by_token(&tok("tok-a"))?[0].0.id)?;
    assert_eq!(lots.len(), 1);
    assert_eq!(
        lots[0].expires_at.micros() - lots[0].created_at.micros(),
        30 * 24 * HOUR,
        "trial credits expire after the service's trial days"
    );

    // The trial flag tells whether this database could still get a trial.
    let (name, message) = authorize(&s, "sms-key", "tok-b", 1.0, json!({"dbuuid": "db-1"})).error();
    assert_eq!(name, INSUFFICIENT);
    let payload: Value = serde_json::from_str(&message)?;
    assert_eq!(payload["trial"], false, "db-1 had its trial: {payload}");
    s.service("ocr", "ocr-key", Some((1, 0)));
    let (_, message) = authorize(&s, "ocr-key", "tok-d", 2.0, json!({})).error();
    let payload: Value = serde_json::from_str(&message)?;
    assert_eq!(
        payload["trial"], false,
        "no database named: no trial to offer"
    );
    let (_, message) = authorize(&s, "ocr-key", "tok-d", 2.0, json!({"dbuuid": "db-9"})).error();
    let payload: Value = serde_json::from_str(&message)?;
    assert_eq!(payload["credit"], 2.0, "the credits the provider asked for");
    // More than the trial: nothing registered, so db-9 can still receive its trial.
    assert_eq!(payload["trial"], true);

    // A service limited to listed databases.
    s.db.store
        .set_service_databases("sms", false, &["db-1".into()])?;
    assert_eq!(balance(&s, "tok-a", "sms", "db-1"), 5.0);
    let (name, message) = s
        .call(
            "/iap/1/balance",
            json!({"dbuuid": "db-2", "account_token": "tok-c", "service_name": "sms"}),
        )
        .error();
    assert!(name.ends_with("AccessError"), "{name}");
    assert!(
        message.contains("not available to database db-2"),
        "{message}"
    );
    // Without a dbuuid the account's own database decides.
    let (name, _) = authorize(&s, "sms-key", "tok-c", 1.0, json!({})).error();
    assert!(name.ends_with("AccessError"));
    let tx = transaction(&authorize(&s, "sms-key", "tok-a", 1.0, json!({})));
    s.call("/iap/1/cancel", json!({"token": tx, "key": "sms-key"}))
        .result();
    let info = s.call(
        "/iap/1/get-accounts-information",
        json!({"dbuuid": "db-2", "iap_accounts": [{"token": "tok-c", "service": "sms"}]}),
    );
    assert_eq!(info.result(), &json!({}), "not available: left out");
    s.db.store.set_service_databases("sms", true, &[])?;
    assert_eq!(balance(&s, "tok-c", "sms", "db-2"), 5.0);

    // Holds: the ttl is capped by configuration (24 h here), partial captures release
    // the rest, a capture after expiry fails clearly.
    s.grant(&sms, "tok-h", 10);
    let tx = transaction(&authorize(
        &s,
        "sms-key",
        "tok-h",
        4.0,
        json!({"ttl": 4320}),
    ));
    let account = s.db.store.accounts_by_token(&tok("tok-h"))?[0].0.clone();
    let hold = &s.db.store.open_holds(account.id)?[0];
    assert_eq!(
        hold.expires_at.micros() - hold.created_at.micros(),
        24 * HOUR
    );
    s.call(
        "/iap/1/capture",
        json!({"token": tx, "key": "sms-key", "credit_to_capture": 1.5}),
    )
    .result();
    assert_eq!(balance(&s, "tok-h", "sms", "db-1"), 8.5, "2.5 released");
    let tx = transaction(&authorize(&s, "sms-key", "tok-h", 2.0, json!({"ttl": 2})));
    assert_eq!(balance(&s, "tok-h", "sms", "db-1"), 6.5);
    s.db.advance(2 * HOUR);
    assert_eq!(
        balance(&s, "tok-h", "sms", "db-1"),
        8.5,
        "expired hold released at once"
    );
    let (name, message) = s
        .call(
            "/iap/1/capture",
            json!({"token": tx, "key": "sms-key", "credit_to_capture": 2}),
        )
        .error();
    assert!(name.ends_with("AccessError"));
    assert!(message.contains("expired"), "{message}");
    // Capture with no amount takes the whole hold.
    let tx = transaction(&authorize(&s, "sms-key", "tok-h", 3.0, json!({"ttl": 1})));
    s.call("/iap/1/capture", json!({"token": tx, "key": "sms-key"}))
        .result();
    assert_eq!(balance(&s, "tok-h", "sms", "db-1"), 5.5);

    // Python sends 4320.0 for a whole ttl; an amount too small to represent is refused,
    // never turned into a free charge.
    let tx = transaction(&authorize(&s, "sms-key", "tok-h", 1.0, json!({"ttl": 2.0})));
    s.call("/iap/1/cancel", json!({"token": tx, "key": "sms-key"}))
        .result();
    let (_, message) = authorize(&s, "sms-key", "tok-h", 0.00004, json!({})).error();
    assert!(message.contains("below the smallest amount"), "{message}");

    // Odoo 17 clears the e-mail by sending false (null leaves it as is).
    let warn = |email: Value| {
        s.call(
            "/iap/update-warning-odoo",
            json!({"account_token": "tok-h", "dbuuid": "db-1", "warn_me": true,
                   "warning_threshold": 2.0, "warning_email": email}),
        )
        .result()
        .clone()
    };
    warn(json!("ops@example.com"));
    warn(Value::Null);
    let alerts = |s: &Sidecar| {
        s.db.store
            .accounts_by_token(&tok("tok-h"))
            .expect("accounts")[0]
            .0
            .alerts
            .clone()
    };
    assert_eq!(alerts(&s).recipients.len(), 1, "null leaves the e-mail");
    warn(json!(false));
    assert!(alerts(&s).recipients.is_empty(), "false clears it");

    // A disabled token is refused for charging and shown as such.
    s.grant(&sms, "tok-z", 10);
    let (name, message) = authorize(&s, "sms-key", "tok-z+disabled", 1.0, json!({})).error();
    assert!(name.ends_with("AccessError"));
    assert!(message.contains("disabled"), "{message}");
    let disabled = s.db.store.accounts_by_token(&tok("tok-z"))?[0].0.clone();
    assert!(disabled.disabled);
    let tx = transaction(&authorize(&s, "sms-key", "tok-z", 1.0, json!({})));
    assert!(!tx.is_empty(), "re-enabled when the suffix is removed");
    Ok(())
}

fn tok(raw: &str) -> iap_sidecar::ledger::token::AccountToken {
    iap_sidecar::ledger::token::AccountToken::from_raw(raw).expect("token")
}

/// Whether `python3` with `requests` is installed (`.ci/run` installs it).
pub fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn iap_python_client(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "py-provider-key", None);
    s.grant(&sms, "py-token", 10);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/odoo_client/iap_client_check.py"
    );
    let output = Command::new("python3")
        .args([
            script,
            &s.base,
            "sms",
            "py-provider-key",
            "py-token",
            "db-py",
            "10",
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stdout.contains("checks passed") {
        return Err(format!("python client failed:\n{stdout}\n{stderr}").into());
    }
    eprintln!("[{}] {}", backend.name(), stdout.trim());
    let account = s.db.store.accounts_by_token(&tok("py-token"))?[0].0.clone();
    let audit = s.db.store.audit(account.id)?;
    assert!(audit.violations().is_empty(), "{:?}", audit.violations());
    Ok(())
}
