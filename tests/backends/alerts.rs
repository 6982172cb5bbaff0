//! Low-credit alerts: edge-triggered detection in the ledger transaction, and delivery
//! through a real SMTP server (aiosmtpd, a separate process on loopback).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iap_sidecar::alerts::Mailer;
use iap_sidecar::config::{AlertSettings, Secret, Settings, SmtpSettings};
use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{Account, AccountId, Credits, Recipient, ServiceId};
use iap_sidecar::store::{AlertFilter, AlertUpdate, Store};
use iap_sidecar::workers::alerts::{RoundReport, Worker};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::rpc::Sidecar;
use crate::support::{Backend, DbOptions, HOUR, MINUTE, TestDb};

/// Whether aiosmtpd can be started (`.ci/run` installs it).
pub fn smtp_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// aiosmtpd writing every message it accepts to a Maildir.
struct SmtpServer {
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SmtpServer {
    /// A server not started yet: its port refuses connections.
    fn stopped() -> SmtpServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        SmtpServer {
            port: free_port(),
            maildir,
            _dir: dir,
            child: None,
        }
    }

    fn start(&mut self) {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        self.child = Some(child);
        // Ready when it accepts a connection (bounded wait for the process to come up).
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: Some("127.0.0.1".into()),
            port: self.port,
            security: "none".into(),
            from: "IAP alerts <alerts@iap.test>".into(),
            timeout_secs: 5,
            ..SmtpSettings::default()
        }
    }

    /// The messages received so far, decoded by Python's e-mail parser.
    fn messages(&self) -> Vec<Value> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/maildir_dump.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(&self.maildir)
            .output()
            .expect("maildir dump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("json")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn recipient(email: &str, lang: &str) -> Recipient {
    Recipient {
        email: email.into(),
        lang_code: Some(lang.into()),
    }
}

/// An account of `token` with `credits`, alerting `recipients` below `threshold`.
fn account(
    db: &TestDb,
    service: ServiceId,
    token: &str,
    credits: i64,
    threshold: i64,
    recipients: Vec<Recipient>,
) -> Account {
    let account = db.account(service, token).expect("account");
    if credits > 0 {
        db.store
            .grant(&iap_sidecar::store::GrantRequest {
                account_id: account.id,
                amount: Credits::whole(credits).expect("credits"),
                expires_at: iap_sidecar::ledger::time::NEVER,
                origin: iap_sidecar::ledger::EntryKind::Grant,
                reference: None,
                description: None,
            })
            .expect("grant");
    }
    db.store
        .set_alerts(
            account.id,
            &AlertUpdate {
                threshold: Some(Credits::whole(threshold).expect("threshold")),
                warn_me: None,
                recipients: Some(recipients),
            },
        )
        .expect("alerts")
}

fn queued(store: &Store, account_id: AccountId) -> usize {
    store
        .list_alerts(AlertFilter::All, 10_000)
        .expect("alerts")
        .iter()
        .filter(|a| a.account_id == account_id)
        .count()
}

fn spend(store: &Store, account_id: AccountId, credits: i64) -> String {
    let (_, token, _) = store
        .authorize(
            account_id,
            Credits::whole(credits).expect("credits"),
            1,
            Some("job"),
        )
        .expect("authorize");
    token
}

pub fn alerts_crossing_rules(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let store = &db.store;
    let service = db.service("sms")?;
    let two = vec![
        recipient("a@example.com", "en_US"),
        recipient("b@example.com", "fr_FR"),
    ];
    let acc = account(&db, service.id, "tok-1", 10, 5, two.clone());

    spend(store, acc.id, 3);
    assert_eq!(queued(store, acc.id), 0, "7 left: above the threshold");
    let hold = spend(store, acc.id, 3);
    assert_eq!(
        queued(store, acc.id),
        2,
        "crossed to 4: one alert per recipient"
    );
    spend(store, acc.id, 1);
    assert_eq!(queued(store, acc.id), 2, "staying below: nothing new");
    store.cancel(&hold, None)?;
    spend(store, acc.id, 2);
    assert_eq!(
        queued(store, acc.id),
        2,
        "back over by a cancel, not a top-up: still silent"
    );
    account(&db, service.id, "tok-1", 10, 5, two.clone());
    let (_, t, _) = store.authorize(acc.id, Credits::whole(10)?, 1, None)?;
    assert_eq!(
        queued(store, acc.id),
        4,
        "a top-up re-armed it: the next crossing alerts"
    );
    store.capture(&t, None, None)?;
    assert_eq!(queued(store, acc.id), 4);

    // Threshold 0 is off; Odoo 17's "warn me" off is off.
    let off = account(&db, service.id, "tok-off", 10, 0, two.clone());
    spend(store, off.id, 9);
    assert_eq!(queued(store, off.id), 0);
    let muted = account(&db, service.id, "tok-muted", 10, 5, two.clone());
    store.set_alerts(
        muted.id,
        &AlertUpdate {
            warn_me: Some(false),
            ..AlertUpdate::default()
        },
    )?;
    spend(store, muted.id, 9);
    assert_eq!(queued(store, muted.id), 0);

    // Credits expiring take the account below: the settlement writes the alert.
    let expiring = db.account(service.id, "tok-exp")?;
    store.grant(&iap_sidecar::store::GrantRequest {
        account_id: expiring.id,
        amount: Credits::whole(8)?,
        expires_at: db.now().plus_micros(30 * MINUTE),
        origin: iap_sidecar::ledger::EntryKind::Grant,
        reference: None,
        description: None,
    })?;
    account(
        &db,
        service.id,
        "tok-exp",
        2,
        5,
        vec![recipient("c@example.com", "en_US")],
    );
    db.advance(HOUR);
    store.settle(expiring.id)?;
    assert_eq!(queued(store, expiring.id), 1, "expiry crossing alerts once");

    // Concurrent captures crossing together: one crossing, one alert.
    let hot = account(
        &db,
        service.id,
        "tok-hot",
        10,
        5,
        vec![recipient("d@example.com", "en_US")],
    );
    let tokens: Vec<String> = (0..8).map(|_| spend(store, hot.id, 1)).collect();
    assert_eq!(queued(store, hot.id), 1, "crossed once while authorizing");
    let hot2 = account(
        &db,
        service.id,
        "tok-hot2",
        20,
        10,
        vec![recipient("e@example.com", "en_US")],
    );
    let holds: Vec<String> = (0..8).map(|_| spend(store, hot2.id, 1)).collect();
    std::thread::scope(|scope| {
        for token in &holds {
            scope.spawn(move || {
                store
                    .capture(token, Some(Credits::whole(2).expect("2")), None)
                    .expect("capture")
            });
        }
    });
    assert_eq!(
        queued(store, hot2.id),
        1,
        "eight concurrent captures, one crossing"
    );
    drop(tokens);
    for id in [acc.id, hot.id, hot2.id, expiring.id] {
        let audit = store.audit(id)?;
        assert!(audit.violations().is_empty(), "{:?}", audit.violations());
    }
    Ok(())
}

fn worker(store: Store, smtp: SmtpSettings, batch: i64) -> Worker {
    let mailer = Mailer::from_settings(&smtp, "https://iap.example.org")
        .expect("mailer")
        .expect("configured");
    Worker {
        store,
        mailer,
        settings: AlertSettings {
            batch,
            retry_base_secs: 60,
            retry_max_secs: 600,
            lease_secs: 30,
            ..AlertSettings::default()
        },
        public_url: "https://iap.example.org".into(),
        keys: iap_sidecar::pages::session::Keys::new("alert links of the alert tests, 32+"),
    }
}

/// One worker round in a runtime of its own (the pooled SMTP transport lives and dies
/// inside it, as in the server).
fn round(store: &Store, smtp: &SmtpServer, batch: i64) -> Result<RoundReport, Failed> {
    let store = store.clone();
    let settings = smtp.settings();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let report = worker(store, settings, batch).run_once().await;
            Ok(report?)
        })
}

pub fn alerts_outage_and_restart(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let service = db.service("sms")?;
    let mut smtp = SmtpServer::stopped();
    for i in 0..50 {
        let lang = if i % 2 == 0 { "fr_FR" } else { "en_US" };
        let acc = account(
            &db,
            service.id,
            &format!("tok-{i}"),
            10,
            5,
            vec![recipient(&format!("user{i}@example.com"), lang)],
        );
        spend(&db.store, acc.id, 6);
    }
    assert_eq!(db.store.list_alerts(AlertFilter::Pending, 1000)?.len(), 50);

    // The mail server is down: every attempt fails, is recorded, and waits its backoff.
    let started = Instant::now();
    let first = round(&db.store, &smtp, 100)?;
    assert_eq!((first.sent, first.failed), (0, 50));
    let failing = db.store.list_alerts(AlertFilter::Failing, 1000)?;
    assert_eq!(failing.len(), 50);
    assert!(
        failing
            .iter()
            .all(|a| a.attempts == 1 && a.last_error.as_deref().is_some_and(|e| !e.is_empty()))
    );
    let again = round(&db.store, &smtp, 100)?;
    assert_eq!(
        (again.sent, again.failed),
        (0, 0),
        "nothing retried before its backoff"
    );

    // It comes back; a first worker sends part, then "restarts" (a new store and worker).
    smtp.start();
    db.advance(10 * MINUTE);
    let before_restart = round(&db.store, &smtp, 20)?;
    assert_eq!((before_restart.sent, before_restart.failed), (20, 0));
    let reopened = Store::connect(&iap_sidecar::config::DatabaseSettings {
        url: Secret::new(db.url()),
        ..Default::default()
    })?
    .with_clock({
        let now = db.now();
        std::sync::Arc::new(move || now)
    });
    let after_restart = round(&reopened, &smtp, 100)?;
    assert_eq!((after_restart.sent, after_restart.failed), (30, 0));
    let elapsed = started.elapsed();

    let messages = smtp.messages();
    let mut ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(messages.len(), 50, "all delivered, none twice");
    assert_eq!(ids.len(), 50, "one Message-ID per alert");
    assert_eq!(db.store.list_alerts(AlertFilter::Sent, 1000)?.len(), 50);
    let french = messages
        .iter()
        .find(|m| m["to"] == "user0@example.com")
        .expect("user0");
    assert!(
        french["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Crédits bas")),
        "{french}"
    );
    let english = messages
        .iter()
        .find(|m| m["to"] == "user1@example.com")
        .expect("user1");
    assert!(
        english["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Low credit")),
        "{english}"
    );
    assert!(
        english["text"]
            .as_str()
            .is_some_and(|t| t.contains("4 credits available")),
        "{english}"
    );
    eprintln!(
        "[{}] outage: 50 crossings, 50 failed attempts while down, 20 sent before and 30 after a restart in {:.2}s; 50 messages, 50 Message-IDs",
        backend.name(),
        elapsed.as_secs_f64()
    );

    // A worker that dies after claiming: its claim lapses and another sends the alert.
    let late = account(
        &db,
        service.id,
        "tok-late",
        10,
        5,
        vec![recipient("late@example.com", "en_US")],
    );
    spend(&db.store, late.id, 6);
    let claimed = db.store.claim_alerts(10, 30 * 1_000_000)?;
    assert_eq!(claimed.len(), 1);
    let nothing = round(&db.store, &smtp, 100)?;
    assert_eq!(
        nothing.sent, 0,
        "claimed by the dead worker until its lease ends"
    );
    db.advance(MINUTE);
    let recovered = round(&db.store, &smtp, 100)?;
    assert_eq!(recovered.sent, 1);
    assert_eq!(smtp.messages().len(), 51);
    Ok(())
}

pub fn alerts_from_odoo_settings(backend: &Backend) -> Result<(), Failed> {
    let mut smtp = SmtpServer::stopped();
    smtp.start();
    let smtp_settings = smtp.settings();
    let s = Sidecar::start_with(backend, |settings: &mut Settings| {
        settings.smtp = smtp_settings;
        settings.alerts.poll_interval_secs = 1;
    })?;
    let service = s.service("sms", "sms-key", None);

    // The exact request Odoo 18 sent when a user set the threshold and a recipient.
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/odoo18-iap-requests.jsonl"
    );
    let text = std::fs::read_to_string(fixtures).map_err(|e| format!("{fixtures}: {e}"))?;
    let request: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| {
            r["path"] == "/iap/1/update-warning-email-alerts"
                && r["body"]["params"]["warning_emails"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
        })
        .map(|r| r["body"].clone())
        .ok_or("no update-warning-email-alerts with recipients in the 18 fixture")?;
    let params = &request["params"];
    let token = params["account_token"].as_str().ok_or("token")?.to_owned();
    let email = params["warning_emails"][0]["email"]
        .as_str()
        .ok_or("email")?
        .to_owned();
    let threshold = params["warning_threshold"].as_f64().ok_or("threshold")?;

    s.grant(&service, &token, 10);
    s.post("/iap/1/update-warning-email-alerts", &request)
        .result();
    let stored =
        s.db.store
            .accounts_by_token(&AccountToken::from_raw(&token).ok_or("token")?)?;
    assert_eq!(stored[0].0.alerts.threshold.to_f64(), threshold);

    // Captures that take the balance under the threshold.
    let mut spent = 0.0;
    while 10.0 - spent >= threshold {
        let tx = s
            .call("/iap/1/authorize", json!({"account_token": token, "credit": 2, "key": "sms-key", "description": "job", "ttl": 1}))
            .result()
            .as_str()
            .ok_or("transaction")?
            .to_owned();
        s.call(
            "/iap/1/capture",
            json!({"token": tx, "key": "sms-key", "credit_to_capture": 2}),
        )
        .result();
        spent += 2.0;
    }

    // The running worker delivers it (bounded wait on the mailbox).
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let messages = smtp.messages();
        if !messages.is_empty() || Instant::now() > deadline {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        messages.len(),
        1,
        "one alert for one crossing: {messages:?}"
    );
    let m = &messages[0];
    assert_eq!(m["to"], email);
    assert!(
        m["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Low credit") && s.contains("Service sms")),
        "{m}"
    );
    // The link carries no token (the sidecar keeps none): it is signed, and opens the
    // account's portal.
    let link = format!("{}/iap/1/credit?service_name=sms", s.base);
    let text = m["text"].as_str().unwrap_or_default();
    let sent = text
        .split_whitespace()
        .find(|w| w.starts_with(&link))
        .ok_or_else(|| format!("no link in {text}"))?;
    assert!(
        sent.contains("&link=") && !sent.contains("account_token"),
        "{sent}"
    );
    let entry = crate::portal_web::Web::new(&s.base).get(&sent[s.base.len()..]);
    let account =
        s.db.store
            .accounts_by_token(&AccountToken::from_raw(&token).ok_or("token")?)?;
    assert_eq!(
        entry.location,
        Some(format!("/portal/accounts/{}", account[0].0.id)),
        "{}",
        entry.body
    );
    assert!(
        m["html"]
            .as_str()
            .is_some_and(|h| h.contains("Buy credits")),
        "{m}"
    );
    Ok(())
}

/// Waits (bounded) until the mailbox holds `n` messages, then returns them.
fn wait_for_mail(smtp: &SmtpServer, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = smtp.messages();
        if messages.len() >= n || Instant::now() > deadline {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Authorizes and captures `credit` through the protocol, as a provider would.
fn charge(s: &Sidecar, token: &str, credit: i64) -> Result<(), Failed> {
    let tx = s
        .call(
            "/iap/1/authorize",
            json!({"account_token": token, "credit": credit, "key": "sms-key", "description": "job", "ttl": 1}),
        )
        .result()
        .as_str()
        .ok_or("transaction")?
        .to_owned();
    s.call(
        "/iap/1/capture",
        json!({"token": tx, "key": "sms-key", "credit_to_capture": credit}),
    )
    .result();
    Ok(())
}

/// Finding 9: an alert turned off (threshold 0 from Odoo 18/19, "warn me" off from Odoo
/// 17) while credits come in, then on again, alerts at the next crossing; so does one
/// whose threshold was moved under the balance. The admin API and `account show` tell
/// the settings and whether the alert is armed.
pub fn alerts_rearm_after_off(backend: &Backend) -> Result<(), Failed> {
    let mut smtp = SmtpServer::stopped();
    smtp.start();
    let smtp_settings = smtp.settings();
    let s = Sidecar::start_with(backend, |settings: &mut Settings| {
        settings.smtp = smtp_settings;
        settings.alerts.poll_interval_secs = 1;
    })?;
    let service = s.service("sms", "sms-key", None);
    let token = "rearm-token-0001";
    let set_threshold = |threshold: i64| {
        s.call(
            "/iap/1/update-warning-email-alerts",
            json!({"account_token": token, "warning_threshold": threshold,
                   "warning_emails": [{"email": "owner@example.com", "lang_code": "en_US"}]}),
        )
        .result()
        .clone()
    };
    let warn_me = |on: bool| {
        s.call(
            "/iap/update-warning-odoo",
            json!({"account_token": token, "warn_me": on}),
        )
        .result()
        .clone()
    };

    s.grant(&service, token, 10);
    set_threshold(5);
    charge(&s, token, 6)?;
    assert_eq!(
        wait_for_mail(&smtp, 1).len(),
        1,
        "10 → 4 under 5: one alert"
    );

    // Odoo 18/19: threshold 0 is off; credits come in; alerts back on; a crossing.
    set_threshold(0);
    s.grant(&service, token, 10);
    set_threshold(5);
    charge(&s, token, 10)?;
    assert_eq!(
        wait_for_mail(&smtp, 2).len(),
        2,
        "turned off, topped up, turned on: 14 → 4 must alert"
    );

    // Odoo 17: "warn me" off, credits, on again, a crossing.
    warn_me(false);
    s.grant(&service, token, 10);
    warn_me(true);
    charge(&s, token, 10)?;
    assert_eq!(
        wait_for_mail(&smtp, 3).len(),
        3,
        "warn me off, topped up, on again: 14 → 4 must alert"
    );

    // The threshold moved under the balance: armed again, the next crossing alerts.
    set_threshold(3);
    let account =
        s.db.store
            .accounts_by_token(&AccountToken::from_raw(token).ok_or("token")?)?
            .into_iter()
            .next()
            .ok_or("account")?
            .0;
    assert!(account.alert_armed, "4 is over the new threshold 3");

    // What the operator sees: the admin API and `account show`.
    let admin = s.db.store.create_admin_token("rearm-test")?;
    let detail: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            reqwest::Client::new()
                .get(format!("{}/api/v1/accounts/{}", s.base, account.id))
                .bearer_auth(&admin)
                .send()
                .await?
                .json::<Value>()
                .await
        })?;
    assert_eq!(
        detail["account"]["alerts"],
        json!({"threshold": "3", "warn_me": true, "armed": true,
               "recipients": [{"email": "owner@example.com", "lang_code": "en_US"}]}),
        "{detail}"
    );
    let shown = Command::new(env!("CARGO_BIN_EXE_iap-sidecar"))
        .args(["account", "show", token])
        .env("IAP_SIDECAR__DATABASE__URL", s.db.url())
        .env("IAP_SIDECAR__LOG__LEVEL", "warn")
        .output()?;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        text.contains("alert below 3 · warn me on · armed · recipients owner@example.com (en_US)"),
        "{text}"
    );

    charge(&s, token, 2)?;
    assert_eq!(
        wait_for_mail(&smtp, 4).len(),
        4,
        "threshold moved to 3 under a balance of 4: 4 → 2 must alert"
    );
    Ok(())
}

/// "Retry now" in the console: a failing alert (the mail server was down) waiting for
/// its backoff is due at once, and the worker's next round delivers it through the real
/// SMTP server. The retry is audited; retrying an alert already sent is refused and
/// writes no line.
pub fn console_alert_retry(backend: &Backend) -> Result<(), Failed> {
    use crate::console::{audit_lines, sign_in};
    use crate::portal_web::Web;

    let sidecar = Sidecar::start(backend)?;
    let db = &sidecar.db;
    let service = db.service("sms")?;
    let mut smtp = SmtpServer::stopped();
    let acc = account(
        db,
        service.id,
        "tok-retry",
        10,
        5,
        vec![recipient("retry@example.com", "en_US")],
    );
    spend(&db.store, acc.id, 6);
    let first = round(&db.store, &smtp, 10)?;
    assert_eq!((first.sent, first.failed), (0, 1));
    let failing = db.store.list_alerts(AlertFilter::Failing, 10)?;
    assert_eq!(failing.len(), 1);
    let id = failing[0].id;
    assert!(failing[0].next_attempt_at > Some(db.now()), "{failing:?}");

    // The server is back, but the alert waits for its backoff.
    smtp.start();
    let waiting = round(&db.store, &smtp, 10)?;
    assert_eq!((waiting.sent, waiting.failed), (0, 0));

    let ops = db.store.create_admin_token("ops")?;
    let web = Web::new(&sidecar.base);
    let csrf = sign_in(&web, &ops);
    let page = web.get("/console/alerts");
    assert!(
        page.expect(200, "alerts page")
            .contains(&format!("/console/alerts/{id}/retry")),
        "no retry button"
    );
    let retried = web.post_form(&format!("/console/alerts/{id}/retry"), &[("csrf", &csrf)]);
    assert_eq!(retried.status, 303, "{}", retried.body);
    let alert = db.store.list_alerts(AlertFilter::All, 10)?;
    assert_eq!(alert[0].next_attempt_at, Some(db.now()), "{alert:?}");
    let lines = audit_lines(&db.store);
    assert!(
        lines
            .iter()
            .any(|(actor, action, target, _)| actor == "token:ops"
                && action == "alert.retry"
                && *target == format!("alert:{id}")),
        "{lines:?}"
    );

    let delivered = round(&db.store, &smtp, 10)?;
    assert_eq!((delivered.sent, delivered.failed), (1, 0));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], "retry@example.com");
    assert_eq!(db.store.list_alerts(AlertFilter::Sent, 10)?.len(), 1);

    // Sent: a retry is refused and leaves no line.
    let again = web.post_form(&format!("/console/alerts/{id}/retry"), &[("csrf", &csrf)]);
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(audit_lines(&db.store), lines, "a refused retry was audited");
    Ok(())
}
