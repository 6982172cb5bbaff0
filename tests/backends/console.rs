//! The operator's console over real HTTP: the landing page at `/`, sign-in with an admin
//! token, and the access rules (no session, a signed-out, expired or revoked-token
//! session, a form without its CSRF token: refused, and nothing changes).

use iap_sidecar::ledger::{AccountId, Credits};
use iap_sidecar::payments::OrderId;
use iap_sidecar::store::{AccountFilter, AlertFilter, OrderFilter};
use libtest_mimic::Failed;

use crate::portal_web::{Web, csrf, service_with_packs, sidecar};
use crate::rpc::Sidecar;
use crate::support::Backend;

/// `/` is a page for people, not a JSON 404.
pub fn console_root_page(backend: &Backend) -> Result<(), Failed> {
    let sidecar = Sidecar::start(backend)?;
    let web = Web::new(&sidecar.base);
    let page = web.get("/");
    let body = page.expect(200, "GET /");
    let kind = page
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(kind.starts_with("text/html"), "content type {kind}");
    for link in [
        "href=\"/console\"",
        "href=\"/portal/provider/login\"",
        "href=\"/api/v1/openapi.json\"",
        "href=\"/health\"",
    ] {
        assert!(body.contains(link), "no {link} on /: {body}");
    }
    Ok(())
}

fn all_accounts() -> AccountFilter {
    AccountFilter {
        service: None,
        dbuuid: None,
        limit: 1000,
        offset: 0,
    }
}

/// Everything a refused request could have changed, as one comparable text.
fn snapshot(sidecar: &Sidecar, tokens: &[&str]) -> String {
    let store = &sidecar.db.store;
    let services = store.list_services().expect("services");
    let mut out = String::new();
    for s in &services {
        let packs = store.packs(s.id, false).expect("packs");
        let dbs = store.service_databases(s.id).expect("databases");
        out += &format!(
            "service {} {} {} {} {} {:?} {:?}\n",
            s.technical_name,
            s.key_hash,
            s.trial_credits,
            s.trial_days,
            s.open_to_all,
            dbs,
            packs
                .iter()
                .map(|p| (&p.name, p.active, p.credits))
                .collect::<Vec<_>>()
        );
    }
    for a in store.list_accounts(&all_accounts()).expect("accounts") {
        let b = store.balance(a.id).expect("balance");
        out += &format!("account {} {:?}\n", a.id, b);
    }
    for o in store
        .orders(&OrderFilter {
            account_id: None,
            status: None,
            limit: 1000,
            offset: 0,
        })
        .expect("orders")
    {
        out += &format!("order {} {:?}\n", o.id, o.status);
    }
    for alert in store.list_alerts(AlertFilter::All, 1000).expect("alerts") {
        out += &format!("alert {} {:?}\n", alert.id, alert.state);
    }
    for token in tokens {
        let valid = store.verify_admin_token(token).expect("verify").is_some();
        out += &format!("token valid={valid}\n");
    }
    out += &format!(
        "databases {}\n",
        store.list_databases().expect("databases").len()
    );
    out
}

/// What the refusal checks work on.
struct Fixture<'a> {
    sidecar: &'a Sidecar,
    account: AccountId,
    order: OrderId,
    tokens: Vec<String>,
}

impl Fixture<'_> {
    fn snapshot(&self) -> String {
        let tokens: Vec<&str> = self.tokens.iter().map(String::as_str).collect();
        snapshot(self.sidecar, &tokens)
    }
}

/// Every console form, as (path, fields besides `csrf`).
fn forms(account: AccountId, order: OrderId) -> Vec<(String, Vec<(&'static str, String)>)> {
    vec![
        (
            "/console/services".into(),
            vec![("name", "fresh".into()), ("label", "Fresh".into())],
        ),
        ("/console/services/sms/rotate-key".into(), vec![]),
        (
            "/console/services/sms/trial".into(),
            vec![("credits", "5".into()), ("days", "30".into())],
        ),
        (
            "/console/services/sms/databases".into(),
            vec![("mode", "only".into()), ("dbuuids", "db-x".into())],
        ),
        (
            "/console/services/sms/packs".into(),
            vec![
                ("name", "Big".into()),
                ("credits", "1000".into()),
                ("price", "300".into()),
                ("currency", "EUR".into()),
            ],
        ),
        (
            "/console/grants".into(),
            vec![
                ("token", "tok-console".into()),
                ("service", "sms".into()),
                ("amount", "100".into()),
                ("key", "grant-1".into()),
            ],
        ),
        (
            format!("/console/accounts/{account}/grant"),
            vec![("amount", "7".into()), ("key", "grant-2".into())],
        ),
        (format!("/console/orders/{order}/confirm"), vec![]),
        (format!("/console/orders/{order}/cancel"), vec![]),
        ("/console/alerts/1/retry".into(), vec![]),
        ("/console/databases/db-x/refresh".into(), vec![]),
        ("/console/databases/db-x/release".into(), vec![]),
        ("/console/tokens".into(), vec![("name", "third".into())]),
        ("/console/tokens/other/revoke".into(), vec![]),
    ]
}

fn pages(account: AccountId) -> Vec<String> {
    vec![
        "/console".into(),
        "/console/services".into(),
        "/console/accounts".into(),
        format!("/console/accounts/{account}"),
        format!("/console/accounts/{account}/journal.csv"),
        "/console/orders".into(),
        "/console/alerts".into(),
        "/console/databases".into(),
        "/console/tokens".into(),
        "/console/audit".into(),
    ]
}

/// Signs in with `token` and answers the console's CSRF token.
pub(crate) fn sign_in(web: &Web, token: &str) -> String {
    let login = web.get("/console/login");
    let form_csrf = csrf(login.expect(200, "login form"));
    let done = web.post_form(
        "/console/login",
        &[("csrf", form_csrf.as_str()), ("token", token)],
    );
    assert_eq!(done.status, 303, "sign-in: {}", done.body);
    let cookie = done
        .set_cookies
        .iter()
        .find(|c| c.starts_with("iap_console="))
        .expect("console cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let overview = web.get("/console");
    csrf(overview.expect(200, "overview after sign-in"))
}

/// Every page and form refuses `web` (whose session is missing or no longer valid) and
/// nothing changes.
fn all_refused(f: &Fixture<'_>, web: &Web, csrf: &str, why: &str) {
    let (account, order) = (f.account, f.order);
    let before = f.snapshot();
    for path in pages(account) {
        let page = web.get(&path);
        assert!(
            page.status == 303 && page.location.as_deref() == Some("/console/login"),
            "{why}: GET {path} answered {} {:?}",
            page.status,
            page.location
        );
    }
    for (path, fields) in forms(account, order) {
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf)];
        all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let page = web.post_form(&path, &all);
        assert_eq!(page.status, 401, "{why}: POST {path}: {}", page.body);
    }
    assert_eq!(f.snapshot(), before, "{why}: something changed");
}

pub fn console_access_rules(backend: &Backend) -> Result<(), Failed> {
    let sidecar = sidecar(backend)?;
    let store = &sidecar.db.store;
    let service = service_with_packs(&sidecar, "sms");
    sidecar.grant(&service, "tok-a", 10);
    let account = store
        .list_accounts(&all_accounts())?
        .first()
        .map(|a| a.id)
        .ok_or("no account")?;
    let pack = store.packs(service.id, true)?[0].id;
    let order = store.create_order(account, pack)?.id;
    let ops = store.create_admin_token("ops")?;
    let other = store.create_admin_token("other")?;
    let f = Fixture {
        sidecar: &sidecar,
        account,
        order,
        tokens: vec![ops.clone(), other.clone()],
    };

    // No session at all.
    let stranger = Web::new(&sidecar.base);
    all_refused(&f, &stranger, "x", "no session");

    // A wrong token does not sign in.
    let login = stranger.get("/console/login");
    let form_csrf = csrf(login.expect(200, "login form"));
    let wrong = stranger.post_form(
        "/console/login",
        &[("csrf", form_csrf.as_str()), ("token", "iapadm_wrong")],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(stranger.cookie("iap_console").is_none());
    // Nor does a right token without the login form's CSRF token.
    let no_csrf = stranger.post_form("/console/login", &[("token", ops.as_str())]);
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);

    // Signed in, but forms without (or with a wrong) CSRF token change nothing.
    let web = Web::new(&sidecar.base);
    let token = sign_in(&web, &ops);
    for path in pages(account) {
        web.get(&path).expect(200, &path);
    }
    let before = f.snapshot();
    for (path, fields) in forms(account, order) {
        let bare: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = web.post_form(&path, &bare);
        assert_eq!(page.status, 403, "POST {path} without CSRF: {}", page.body);
        let mut wrong = vec![("csrf", "0123456789abcdef0123456789abcdef")];
        wrong.extend(bare.iter().copied());
        let page = web.post_form(&path, &wrong);
        assert_eq!(
            page.status, 403,
            "POST {path} with a wrong CSRF: {}",
            page.body
        );
    }
    assert_eq!(f.snapshot(), before, "a refused form changed something");

    // Signed out: the same cookie no longer opens anything (the session ended on the
    // server, not only in this browser).
    let cookie = web.cookie("iap_console").ok_or("no cookie")?;
    let out = web.post_form("/console/logout", &[("csrf", token.as_str())]);
    assert_eq!(out.status, 303, "{}", out.body);
    web.set_cookie("iap_console", &cookie);
    all_refused(&f, &web, &token, "signed-out session");

    // A revoked token's sessions end with it.
    let web = Web::new(&sidecar.base);
    let token = sign_in(&web, &ops);
    let web2 = Web::new(&sidecar.base);
    let token2 = sign_in(&web2, &other);
    assert!(store.revoke_admin_token("ops")?);
    all_refused(&f, &web, &token, "revoked token");

    // An expired session.
    sidecar.db.advance(13 * 3_600 * 1_000_000);
    all_refused(&f, &web2, &token2, "expired session");

    // The actions themselves, through a fresh session: a grant given twice with the same
    // key credits once, and each action leaves an audit line readable via the admin API.
    let web = Web::new(&sidecar.base);
    let token = sign_in(&web, &other);
    for _ in 0..2 {
        let done = web.post_form(
            "/console/grants",
            &[
                ("csrf", token.as_str()),
                ("token", "tok-console"),
                ("service", "sms"),
                ("amount", "100"),
                ("key", "grant-once"),
            ],
        );
        assert_eq!(done.status, 303, "{}", done.body);
    }
    let granted = store
        .find_account(
            service.id,
            &iap_sidecar::ledger::token::AccountToken::from_raw("tok-console").ok_or("token")?,
        )?
        .ok_or("no granted account")?;
    assert_eq!(
        store.balance(granted.id)?.balance,
        Credits::whole(100).expect("credits")
    );
    let confirm = web.post_form(
        &format!("/console/orders/{order}/confirm"),
        &[("csrf", token.as_str())],
    );
    assert_eq!(confirm.status, 303, "{}", confirm.body);
    let audit = reqwest::blocking_get_json(&sidecar.base, "/api/v1/audit", &other);
    let lines = audit["lines"].as_array().ok_or("no audit lines")?;
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert!(actions.contains(&"grant"), "{audit}");
    assert!(actions.contains(&"order.confirm"), "{audit}");
    assert!(actions.contains(&"sign_in"), "{audit}");
    assert!(
        lines
            .iter()
            .all(|l| l["actor"].as_str().is_some() && l["at"].as_str().is_some()),
        "{audit}"
    );
    let page = web.get("/console/audit");
    assert!(page.expect(200, "audit page").contains("order.confirm"));
    Ok(())
}

/// A tiny blocking GET with a bearer token (the admin API).
pub(crate) mod reqwest {
    pub fn blocking_get_json(base: &str, path: &str, token: &str) -> serde_json::Value {
        let (status, body) = blocking_get(base, path, token);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The status and JSON body of a GET with a bearer token.
    pub fn blocking_get(base: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let r = ::reqwest::Client::new()
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(serde_json::Value::Null))
        })
    }
}

/// A backup taken while 16 clients charge through the protocol restores to a ledger
/// whose audit passes and which holds every capture answered before the backup began.
/// SQLite only: PostgreSQL is backed up with pg_dump (docs/operations.md).
pub fn console_backup_under_load(backend: &Backend) -> Result<(), Failed> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use iap_sidecar::config::{DatabaseSettings, Secret};
    use iap_sidecar::store::Store;
    use iap_sidecar::store::backup::{check_sqlite_backup, restore_sqlite_backup};
    use serde_json::json;

    const CLIENTS: usize = 16;
    const BEFORE: usize = 15;
    const AFTER: usize = 15;
    let sidecar = Sidecar::start(backend)?;
    let service = sidecar.service("sms", "key-sms", None);
    for i in 0..CLIENTS {
        sidecar.grant(&service, &format!("tok-load-{i}"), 1_000_000);
    }
    let dir = tempfile::tempdir()?;
    let backup = dir.path().join("backup.db");
    let began = AtomicBool::new(false);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    // Per client: descriptions of the captures answered before the backup began.
    let acknowledged: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (sidecar, began, ready_tx) = (&sidecar, &began, ready_tx.clone());
                scope.spawn(move || {
                    let mut before = Vec::new();
                    let mut n = 0;
                    let mut after = 0;
                    while after < AFTER {
                        let description = format!("load-{i}-{n}");
                        n += 1;
                        let tx = sidecar
                            .call(
                                "/iap/1/authorize",
                                json!({"key": "key-sms", "account_token": format!("tok-load-{i}"),
                                       "credit": 1.5, "description": description}),
                            )
                            .result()
                            .as_str()
                            .expect("transaction token")
                            .to_owned();
                        sidecar
                            .call(
                                "/iap/1/capture",
                                json!({"token": tx, "key": "key-sms", "credit_to_capture": 1}),
                            )
                            .result();
                        // Answered, and the backup had not begun: it must hold this one.
                        if began.load(Ordering::SeqCst) {
                            after += 1;
                        } else {
                            before.push(description);
                        }
                        if before.len() == BEFORE && !began.load(Ordering::SeqCst) {
                            ready_tx.send(()).expect("ready");
                        }
                    }
                    before
                })
            })
            .collect();
        drop(ready_tx);
        // The backup begins once every client has charged a while, and they go on.
        for _ in 0..CLIENTS {
            ready_rx.recv().expect("a client is ready");
        }
        began.store(true, Ordering::SeqCst);
        let bytes = sidecar.db.store.backup_to(&backup).expect("backup");
        assert!(bytes > 0);
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let check = check_sqlite_backup(&backup)?;
    assert_eq!(check.accounts, CLIENTS as i64);

    // Restore into a fresh file and open it as the service would.
    let restored = dir.path().join("restored.db");
    restore_sqlite_backup(&backup, &restored)?;
    let settings = DatabaseSettings {
        url: Secret::new(format!("sqlite://{}", restored.display())),
        ..DatabaseSettings::default()
    };
    let store = Store::connect(&settings)?;
    assert!(
        store.migrate()?.is_empty(),
        "the backup had every migration"
    );
    let mut total = 0;
    for (i, wanted) in acknowledged.iter().enumerate() {
        let token = iap_sidecar::ledger::token::AccountToken::from_raw(&format!("tok-load-{i}"))
            .ok_or("token")?;
        let service = store.service_by_name("sms")?;
        let account = store
            .find_account(service.id, &token)?
            .ok_or("account missing from the backup")?;
        crate::support::audit_clean(&store, account.id)?;
        let captured: std::collections::HashSet<String> = store
            .journal(account.id, None, 100_000)?
            .into_iter()
            .filter(|e| e.kind == iap_sidecar::ledger::EntryKind::Capture)
            .filter_map(|e| e.description)
            .collect();
        for d in wanted {
            assert!(
                captured.contains(d),
                "capture {d} acknowledged before the backup is missing"
            );
        }
        assert!(wanted.len() >= BEFORE);
        total += wanted.len();
    }
    eprintln!("backup under load: {total} acknowledged captures all present");
    Ok(())
}

const DAY: i64 = iap_sidecar::ledger::time::MICROS_PER_DAY;

/// The overview's figures, recomputed straight from the journal and the holds.
fn overview_matches_journal(db: &crate::support::TestDb, when: &str) -> Result<(), Failed> {
    let store = &db.store;
    let overview = store.console_overview()?;
    let now = db.now().micros();
    let today = now - now.rem_euclid(DAY);
    let sum = |sql: String| -> Result<i64, Failed> { Ok(db.raw_i64(&sql)?) };
    let figures = |since: i64| -> Result<[i64; 3], Failed> {
        Ok([
            sum(format!(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS v FROM journal \
                 WHERE kind IN ('grant', 'topup', 'trial') AND effective_at >= {since}"
            ))?,
            sum(format!(
                "SELECT CAST(COALESCE(SUM(-amount), 0) AS BIGINT) AS v FROM journal \
                 WHERE kind = 'capture' AND effective_at >= {since}"
            ))?,
            sum(format!(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS v FROM holds \
                 WHERE created_at >= {since}"
            ))?,
        ])
    };
    let month = today - 29 * DAY;
    for (name, totals, since) in [
        ("today", overview.today, today),
        ("30 days", overview.days_30, month),
        ("all time", overview.all_time, i64::MIN),
    ] {
        let got = [
            totals.sold.units(),
            totals.consumed.units(),
            totals.held.units(),
        ];
        assert_eq!(
            got,
            figures(since)?,
            "{when}: {name} (sold, consumed, held)"
        );
    }
    // The chart: every (service, day) point, and nothing captured left out of it.
    let mut charted = 0;
    for (service, days) in &overview.daily {
        for (day, value) in days {
            let (from, until) = (day * DAY, (day + 1) * DAY);
            let expected = sum(format!(
                "SELECT CAST(COALESCE(SUM(-journal.amount), 0) AS BIGINT) AS v FROM journal \
                 JOIN accounts ON accounts.id = journal.account_id \
                 WHERE journal.kind = 'capture' AND accounts.service_id = {} \
                 AND journal.effective_at >= {from} AND journal.effective_at < {until}",
                service.id
            ))?;
            assert_eq!(
                value.units(),
                expected,
                "{when}: {} on day {day}",
                service.technical_name
            );
            charted += value.units();
        }
    }
    assert_eq!(charted, overview.days_30.consumed.units(), "{when}: chart");
    Ok(())
}

/// The overview reads closed days from their totals and open days live; its figures
/// stay equal to sums straight from the journal while days close, and a day closes only
/// once no write can land in it any more (its end plus the call deadline and a minute).
pub fn console_overview_rollup(backend: &Backend) -> Result<(), Failed> {
    use iap_sidecar::ledger::EntryKind;
    use iap_sidecar::ledger::time::NEVER;
    use iap_sidecar::store::GrantRequest;

    use crate::support::{DbOptions, HOUR, TestDb, credits};

    let db = TestDb::new(backend, DbOptions::default())?;
    let store = &db.store;
    let services = [db.service("ov-a")?, db.service("ov-b")?];
    let accounts = [
        db.account(services[0].id, "ov-a-1")?.id,
        db.account(services[0].id, "ov-a-2")?.id,
        db.account(services[1].id, "ov-b-1")?.id,
    ];
    let grant = |account_id, amount, origin| {
        store.grant(&GrantRequest {
            account_id,
            amount: credits(amount),
            expires_at: NEVER,
            origin,
            reference: None,
            description: None,
        })
    };
    for &a in &accounts {
        grant(a, 100_000, EntryKind::Grant)?;
    }
    let closed_rows = |day: i64| {
        db.raw_i64(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS v FROM daily_totals WHERE day = {day}"
        ))
    };
    // 40 days of activity, 7 hours apart, with the overview read along the way (so days
    // close a few at a time) and a hold left open now and then.
    for step in 0..(40 * 24 / 7) {
        let a = accounts[step % accounts.len()];
        if step % 5 == 0 {
            grant(a, 10 + step as i64, EntryKind::Topup)?;
        }
        let (_, token, _) = store.authorize(a, credits(3), 1_000, None)?;
        if step % 4 != 0 {
            store.capture(&token, Some(credits(1 + (step % 3) as i64)), None)?;
        }
        if step % 9 == 0 {
            overview_matches_journal(&db, &format!("step {step}"))?;
        }
        db.advance(7 * HOUR);
    }
    overview_matches_journal(&db, "after 40 days")?;

    // The margin's boundary: one microsecond before day D counts as closed, a write that
    // read its clock in D (committed late, within the call deadline) still counts live.
    let margin = store.rollup_margin();
    assert!(margin > 60_000_000, "margin {margin} µs");
    let now = db.now().micros();
    let day = now.div_euclid(DAY);
    let end = (day + 1) * DAY;
    db.advance(end + margin - 1 - now);
    overview_matches_journal(&db, "one µs before D closes")?;
    assert_eq!(closed_rows(day)?, 0, "day D rolled up before its margin");
    let late = accounts[0];
    let seq = db.raw_i64(&format!(
        "SELECT CAST(MAX(seq) AS BIGINT) AS v FROM journal WHERE account_id = {late}"
    ))?;
    let balance = store.balance(late)?.balance.units();
    db.raw_execute(&format!(
        "UPDATE accounts SET balance = balance - 20000, last_seq = {next} WHERE id = {late}",
        next = seq + 1
    ))?;
    db.raw_execute(&format!(
        "INSERT INTO journal (account_id, seq, kind, amount, balance_after, effective_at, \
         recorded_at) VALUES ({late}, {next}, 'capture', -20000, {after}, {at}, {at})",
        next = seq + 1,
        after = balance - 20000,
        at = end - 1,
    ))?;
    overview_matches_journal(&db, "a late entry in D, within the margin")?;
    // At the margin D closes, with the late entry in its totals.
    db.advance(1);
    overview_matches_journal(&db, "D closed")?;
    assert!(closed_rows(day)? > 0, "day D not rolled up at its margin");
    // From then on a write reads a clock past D's end plus the margin: it lands on a
    // later day, never in the closed one.
    let (_, token, _) = store.authorize(accounts[1], credits(2), 1_000, None)?;
    store.capture(&token, Some(credits(2)), None)?;
    let last = store
        .journal(accounts[1], None, 1)?
        .into_iter()
        .next()
        .ok_or("no entry")?;
    assert!(
        last.effective_at.micros().div_euclid(DAY) > day,
        "an entry written after D closed is dated {:?}",
        last.effective_at
    );
    overview_matches_journal(&db, "after D closed")?;
    // A second process rolling the same days up changes nothing.
    let other = db.another_store()?;
    db.advance(2 * DAY);
    let first = format!("{:?}", other.console_overview()?);
    assert_eq!(format!("{:?}", store.console_overview()?), first);
    overview_matches_journal(&db, "two days later")?;
    Ok(())
}

/// The audit lines `(actor, action, target, detail)` newest first.
pub(crate) fn audit_lines(
    store: &iap_sidecar::store::Store,
) -> Vec<(String, String, String, String)> {
    store
        .audit_log(1000, None)
        .expect("audit log")
        .into_iter()
        .map(|l| (l.actor, l.action, l.target, l.detail))
        .collect()
}

/// The text of the element with `id` in `html` (a secret shown once).
fn shown(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find('<')?;
    Some(rest[open..open + close].trim().to_owned())
}

/// An admin token created in the console is shown once, works on the admin API and
/// opens a console session; revoked in the console, its bearer use and its sessions end.
/// Both actions are audited.
pub fn console_admin_token_lifecycle(backend: &Backend) -> Result<(), Failed> {
    let sidecar = Sidecar::start(backend)?;
    let store = &sidecar.db.store;
    let ops = store.create_admin_token("ops")?;
    let web = Web::new(&sidecar.base);
    let csrf = sign_in(&web, &ops);

    let page = web.post_form("/console/tokens", &[("csrf", &csrf), ("name", "robot")]);
    let html = page.expect(200, "token created");
    let secret = shown(html, "shown-token").ok_or("the new token is not shown")?;
    assert!(secret.starts_with("iapadm_"), "{secret}");
    // Shown once: the tokens page lists it by name only.
    let list = web.get("/console/tokens");
    let list = list.expect(200, "tokens page");
    assert!(list.contains("robot") && !list.contains(&secret));
    let (status, _) = reqwest::blocking_get(&sidecar.base, "/api/v1/audit", &secret);
    assert_eq!(status, 200, "the new token on the admin API");
    let robot = Web::new(&sidecar.base);
    let robot_csrf = sign_in(&robot, &secret);
    assert!(!robot_csrf.is_empty());
    let lines = audit_lines(store);
    assert!(
        lines
            .iter()
            .any(|(actor, action, target, _)| actor == "token:ops"
                && action == "token.create"
                && target == "token:robot"),
        "{lines:?}"
    );

    let revoked = web.post_form("/console/tokens/robot/revoke", &[("csrf", &csrf)]);
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let (status, _) = reqwest::blocking_get(&sidecar.base, "/api/v1/audit", &secret);
    assert_eq!(status, 401, "a revoked token on the admin API");
    let page = robot.get("/console");
    assert!(
        page.status == 303 && page.location.as_deref() == Some("/console/login"),
        "the revoked token's session: {} {:?}",
        page.status,
        page.location
    );
    let lines = audit_lines(store);
    assert!(
        lines
            .iter()
            .any(|(actor, action, target, _)| actor == "token:ops"
                && action == "token.revoke"
                && target == "token:robot"),
        "{lines:?}"
    );
    // Revoking it again is refused, and writes no line.
    let again = web.post_form("/console/tokens/robot/revoke", &[("csrf", &csrf)]);
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(audit_lines(store), lines, "a refused revoke was audited");
    Ok(())
}

/// A registered Odoo database (against the stand-in Odoo) is read again from the
/// console, then released; both audited.
pub fn console_database_refresh_release(backend: &Backend) -> Result<(), Failed> {
    use actix_web::{App, HttpServer, web};
    use iap_sidecar::config::Secret;
    use iap_sidecar::odoo::{OdooProtocol, Snapshot};
    use iap_sidecar::store::OdooCredentials;

    use crate::odoo_bridge::{STAND_IN_UUID, stand_in};

    let sidecar = Sidecar::start_with(backend, |s| {
        s.odoo.allowed_hosts = vec!["127.0.0.1".to_owned()];
    })?;
    let store = &sidecar.db.store;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (addr, _server) = rt.block_on(async {
        HttpServer::new(|| App::new().route("/jsonrpc", web::post().to(stand_in)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .map(|s| {
                let addr = s.addrs()[0];
                let server = s.run();
                let handle = server.handle();
                tokio::spawn(server);
                (addr, handle)
            })
    })?;
    let credentials = OdooCredentials {
        dbuuid: STAND_IN_UUID.to_owned(),
        url: format!("http://{addr}"),
        db_name: "standin".to_owned(),
        login: "admin".to_owned(),
        api_key: Secret::new("admin"),
    };
    // Registered with nothing read yet.
    let empty = Snapshot {
        dbuuid: STAND_IN_UUID.to_owned(),
        companies: vec![],
        accounts: vec![],
        protocol: OdooProtocol::JsonRpc,
    };
    store.register_database(&credentials, &empty, None)?;
    let before = store.list_databases()?;
    assert_eq!(before.len(), 1);
    assert!(before[0].companies.is_empty(), "{:?}", before[0].companies);

    let ops = store.create_admin_token("ops")?;
    let web = Web::new(&sidecar.base);
    let csrf = sign_in(&web, &ops);
    sidecar.db.advance(60_000_000);
    let done = web.post_form(
        &format!("/console/databases/{STAND_IN_UUID}/refresh"),
        &[("csrf", &csrf)],
    );
    assert_eq!(done.status, 303, "refresh: {}", done.body);
    let after = store.list_databases()?;
    assert_eq!(after.len(), 1);
    assert!(after[0].last_error.is_none(), "{:?}", after[0].last_error);
    assert!(!after[0].companies.is_empty(), "no companies read");
    assert_eq!(after[0].refreshed_at, Some(sidecar.db.now()));
    let lines = audit_lines(store);
    let target = format!("database:{STAND_IN_UUID}");
    assert!(
        lines
            .iter()
            .any(|(actor, action, t, detail)| actor == "token:ops"
                && action == "database.refresh"
                && *t == target
                && detail.starts_with("refreshed")),
        "{lines:?}"
    );
    let page = web.get("/console/databases");
    assert!(page.expect(200, "databases page").contains(STAND_IN_UUID));

    let released = web.post_form(
        &format!("/console/databases/{STAND_IN_UUID}/release"),
        &[("csrf", &csrf)],
    );
    assert_eq!(released.status, 303, "release: {}", released.body);
    assert!(store.list_databases()?.is_empty(), "still registered");
    let lines = audit_lines(store);
    assert!(
        lines
            .iter()
            .any(|(actor, action, t, _)| actor == "token:ops"
                && action == "database.release"
                && *t == target),
        "{lines:?}"
    );
    // Released twice: refused, no line.
    let again = web.post_form(
        &format!("/console/databases/{STAND_IN_UUID}/release"),
        &[("csrf", &csrf)],
    );
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(audit_lines(store), lines, "a refused release was audited");
    Ok(())
}

/// A console action writes its audit line in its own transaction: refused or failed,
/// it leaves no line (and changes nothing); done, it leaves exactly one.
pub fn console_refused_actions_leave_no_audit_line(backend: &Backend) -> Result<(), Failed> {
    let sidecar = sidecar(backend)?;
    let store = &sidecar.db.store;
    let service = service_with_packs(&sidecar, "sms");
    sidecar.grant(&service, "tok-a", 10);
    let account = store
        .list_accounts(&all_accounts())?
        .first()
        .map(|a| a.id)
        .ok_or("no account")?;
    let pack = store.packs(service.id, true)?[0].id;
    let order = store.create_order(account, pack)?.id;
    let ops = store.create_admin_token("ops")?;
    let web = Web::new(&sidecar.base);
    let csrf = sign_in(&web, &ops);

    let before = audit_lines(store);
    let cancelled = web.post_form(
        &format!("/console/orders/{order}/cancel"),
        &[("csrf", csrf.as_str())],
    );
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    let lines = audit_lines(store);
    assert_eq!(lines.len(), before.len() + 1, "{lines:?}");
    assert_eq!(
        (lines[0].1.as_str(), lines[0].2.as_str()),
        ("order.cancel", format!("order:{order}").as_str())
    );

    let f = Fixture {
        sidecar: &sidecar,
        account,
        order,
        tokens: vec![ops.clone()],
    };
    let state = f.snapshot();
    // (path, fields besides `csrf`, the status of the refusal)
    type Refused<'a> = (String, Vec<(&'a str, &'a str)>, u16);
    let refused: Vec<Refused<'_>> = vec![
        // Confirming a cancelled order.
        (format!("/console/orders/{order}/confirm"), vec![], 409),
        // Giving credits to an account that does not exist.
        (
            "/console/accounts/999999/grant".into(),
            vec![("amount", "5"), ("key", "grant-missing")],
            404,
        ),
        // A service that does not exist, a pack that does not exist.
        (
            "/console/services/nope/trial".into(),
            vec![("credits", "5"), ("days", "30")],
            404,
        ),
        ("/console/services/sms/packs/999999".into(), vec![], 404),
        ("/console/services/nope/rotate-key".into(), vec![], 404),
        // A service name taken already.
        (
            "/console/services".into(),
            vec![("name", "sms"), ("label", "Again")],
            409,
        ),
        // An alert that does not exist, a database never registered, a token unknown.
        ("/console/alerts/999999/retry".into(), vec![], 404),
        ("/console/databases/db-none/release".into(), vec![], 404),
        ("/console/tokens/nobody/revoke".into(), vec![], 404),
    ];
    for (path, fields, status) in refused {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        let page = web.post_form(&path, &all);
        assert_eq!(page.status, status, "POST {path}: {}", page.body);
        assert_eq!(
            audit_lines(store),
            lines,
            "POST {path} refused, yet audited"
        );
    }
    assert_eq!(f.snapshot(), state, "a refused action changed something");
    Ok(())
}

/// The audit line and the action commit together: when the line cannot be written (a
/// trigger refuses every insert into `audit_log`), the action is undone with it — the
/// order stays pending, no credit is granted — and once lines can be written again the
/// same actions go through, each with its line.
pub fn console_action_undone_without_its_audit_line(backend: &Backend) -> Result<(), Failed> {
    let sidecar = sidecar(backend)?;
    let db = &sidecar.db;
    let store = &db.store;
    let service = service_with_packs(&sidecar, "sms");
    sidecar.grant(&service, "tok-a", 10);
    let account = store
        .list_accounts(&all_accounts())?
        .first()
        .map(|a| a.id)
        .ok_or("no account")?;
    let pack = store.packs(service.id, true)?[0].id;
    let order = store.create_order(account, pack)?.id;
    let ops = store.create_admin_token("ops")?;
    let web = Web::new(&sidecar.base);
    let csrf = sign_in(&web, &ops);
    let balance = store.balance(account)?.balance;

    if backend.is_postgres() {
        db.raw_execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
        )?;
        db.raw_execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        )?;
    } else {
        db.raw_execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )?;
    }
    let lines = audit_lines(store);
    let cancel = web.post_form(
        &format!("/console/orders/{order}/cancel"),
        &[("csrf", csrf.as_str())],
    );
    assert_eq!(cancel.status, 500, "{}", cancel.body);
    let grant = web.post_form(
        &format!("/console/accounts/{account}/grant"),
        &[("csrf", csrf.as_str()), ("amount", "7"), ("key", "grant-x")],
    );
    assert_eq!(grant.status, 500, "{}", grant.body);
    assert_eq!(
        store.order(order)?.status,
        iap_sidecar::payments::OrderStatus::Pending,
        "the order was cancelled without its audit line"
    );
    assert_eq!(
        store.balance(account)?.balance,
        balance,
        "credits were granted without an audit line"
    );
    assert_eq!(audit_lines(store), lines);

    if backend.is_postgres() {
        db.raw_execute("DROP TRIGGER refuse_audit ON audit_log")?;
    } else {
        db.raw_execute("DROP TRIGGER refuse_audit")?;
    }
    let cancel = web.post_form(
        &format!("/console/orders/{order}/cancel"),
        &[("csrf", csrf.as_str())],
    );
    assert_eq!(cancel.status, 303, "{}", cancel.body);
    let grant = web.post_form(
        &format!("/console/accounts/{account}/grant"),
        &[("csrf", csrf.as_str()), ("amount", "7"), ("key", "grant-x")],
    );
    assert_eq!(grant.status, 303, "{}", grant.body);
    assert_eq!(
        store.order(order)?.status,
        iap_sidecar::payments::OrderStatus::Cancelled
    );
    assert_eq!(
        store.balance(account)?.balance,
        balance.checked_add(Credits::whole(7)?)?
    );
    let after = audit_lines(store);
    assert_eq!(after.len(), lines.len() + 2, "{after:?}");
    assert_eq!(after[0].1, "grant");
    assert_eq!(after[1].1, "order.cancel");
    Ok(())
}
