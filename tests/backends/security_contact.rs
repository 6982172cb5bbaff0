//! Trust at first contact (issue #12, findings 1, 2, 3 and three points of 10): an
//! account belongs to the database of its first authenticated contact, trials go once per
//! account and once per database, restrictions follow the account's database, and callers
//! holding nothing but a token create nothing.

use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{Account, AccountId, ServiceId};
use iap_sidecar::payments::OrderId;
use iap_sidecar::store::AccountFilter;
use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::portal_web::Web;
use crate::rpc::{INSUFFICIENT, Sidecar};
use crate::support::{Backend, HOUR};

fn tok(raw: &str) -> AccountToken {
    AccountToken::from_raw(raw).expect("token")
}

fn balance(s: &Sidecar, token: &str, service: &str, db: &str) -> crate::rpc::Answer {
    s.call(
        "/iap/1/balance",
        json!({"dbuuid": db, "account_token": token, "service_name": service}),
    )
}

fn authorize(
    s: &Sidecar,
    key: &str,
    token: &str,
    credit: f64,
    db: Option<&str>,
) -> crate::rpc::Answer {
    let mut params = json!({"account_token": token, "credit": credit, "key": key,
                            "description": "job", "ttl": 4320});
    if let Some(db) = db {
        params["dbuuid"] = json!(db);
    }
    s.call("/iap/1/authorize", params)
}

fn account(s: &Sidecar, service_id: ServiceId, token: &str) -> Option<Account> {
    s.db.store
        .find_account(service_id, &tok(token))
        .expect("lookup")
}

fn all_accounts(s: &Sidecar) -> usize {
    s.db.store
        .list_accounts(&AccountFilter {
            limit: 100_000,
            ..AccountFilter::default()
        })
        .expect("accounts")
        .len()
}

fn lots(s: &Sidecar, account_id: AccountId) -> usize {
    s.db.store.lots(account_id).expect("lots").len()
}

/// Finding 1: a trial is given once per account and once per database, and only for the
/// database the account belongs to; other `dbuuid`s get no lot.
pub fn trial_once_per_account_and_database(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "sms-key", Some((5, 30)));

    // The provider's authorize binds the account to farm-0 and gives farm-0's trial.
    authorize(&s, "sms-key", "tok-a", 1.0, Some("farm-0")).result();
    let a = account(&s, sms.id, "tok-a").ok_or("tok-a registered")?;
    assert_eq!(a.dbuuid.as_deref(), Some("farm-0"));
    assert_eq!(lots(&s, a.id), 1);

    // Naming other databases gives nothing more, on any route.
    for n in 1..=5 {
        let db = format!("farm-{n}");
        let left = 4.0 - 0.5 * f64::from(n - 1);
        assert_eq!(
            balance(&s, "tok-a", "sms", &db).result(),
            &json!(left),
            "{db}"
        );
        authorize(&s, "sms-key", "tok-a", 0.5, Some(&db)).result();
    }
    assert_eq!(lots(&s, a.id), 1, "one trial lot whatever dbuuid is named");
    assert_eq!(
        account(&s, sms.id, "tok-a")
            .ok_or("tok-a")?
            .dbuuid
            .as_deref(),
        Some("farm-0"),
        "another dbuuid never re-binds the account"
    );

    // farm-0 had its trial: a second account of farm-0 gets none.
    let (name, _) = authorize(&s, "sms-key", "tok-b", 1.0, Some("farm-0")).error();
    assert_eq!(name, INSUFFICIENT);
    // A database the account does not belong to keeps its own trial for its own account.
    authorize(&s, "sms-key", "tok-c", 1.0, Some("farm-3")).result();
    let c = account(&s, sms.id, "tok-c").ok_or("tok-c registered")?;
    assert_eq!(lots(&s, c.id), 1, "farm-3 still had its trial");
    Ok(())
}

/// Finding 2: a service limited to `dbA` is checked against the account's database, not
/// against the `dbuuid` the request names (balance, authorize, portal entry link).
pub fn restriction_follows_the_accounts_database(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "sms-key", None);
    s.grant(&sms, "tok-a2", 10);
    // Bound to dbA2 by the provider while the service was open to all.
    authorize(&s, "sms-key", "tok-a2", 1.0, Some("dbA2")).result();
    s.db.store
        .set_service_databases("sms", false, &["dbA".into()])?;

    let (name, message) = balance(&s, "tok-a2", "sms", "dbA").error();
    assert!(name.ends_with("AccessError"), "balance: {name} {message}");
    let (name, message) = authorize(&s, "sms-key", "tok-a2", 1.0, Some("dbA")).error();
    assert!(name.ends_with("AccessError"), "authorize: {name} {message}");
    let info = s.call(
        "/iap/1/get-accounts-information",
        json!({"dbuuid": "dbA", "iap_accounts": [{"token": "tok-a2", "service": "sms"}]}),
    );
    assert_eq!(info.result(), &json!({}), "left out of dbA's list");
    let listed = s.call(
        "/iap/services-token",
        json!({"dbuuid": "dbA", "iap_accounts": ["tok-a2"]}),
    );
    assert_eq!(
        listed.result(),
        &json!([]),
        "left out of dbA's Odoo 17 list"
    );
    let web = Web::new(&s.base);
    let entry = web.get("/iap/1/credit?dbuuid=dbA&service_name=sms&account_token=tok-a2");
    assert_ne!(entry.status, 303, "no portal session: {}", entry.body);

    // The listed database itself still works.
    s.grant(&sms, "tok-a", 10);
    authorize(&s, "sms-key", "tok-a", 1.0, Some("dbA")).result();
    assert_eq!(balance(&s, "tok-a", "sms", "dbA").result(), &json!(9.0));
    Ok(())
}

/// Finding 3: unknown tokens on the read and settings routes are answered without a row
/// being written; alert recipients only on accounts that exist.
pub fn strangers_create_nothing(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    s.service("sms", "sms-key", Some((5, 30)));
    let before = all_accounts(&s);

    for n in 0..20 {
        let token = format!("stranger-{n}");
        assert_eq!(
            balance(&s, &token, "sms", &format!("farm-{n}")).result(),
            &json!(0.0)
        );
    }
    let items: Vec<Value> = (0..200)
        .map(|n| json!({"token": format!("random-{n}"), "service": "sms"}))
        .collect();
    let info = s.call(
        "/iap/1/get-accounts-information",
        json!({"dbuuid": "farm", "iap_accounts": items}),
    );
    let info = info.result().as_object().ok_or("an object")?.clone();
    assert_eq!(info.len(), 200);
    assert!(
        info.values()
            .all(|i| i["registered"] == "unregistered" && i["balance"] == 0),
        "{info:?}"
    );
    let listed = s.call(
        "/iap/services-token",
        json!({"dbuuid": "farm", "iap_accounts": ["random-1", "random-2"]}),
    );
    assert_eq!(listed.result(), &json!([]));
    let (name, _) = s
        .call(
            "/iap/1/update-warning-email-alerts",
            json!({"account_token": "fresh-random", "warning_threshold": 1,
                   "warning_emails": [{"email": "victim@example.com"}]}),
        )
        .error();
    assert!(name.ends_with("AccessError"), "{name}");
    s.call(
        "/iap/update-warning-odoo",
        json!({"account_token": "fresh-random-17", "dbuuid": "farm", "warn_me": true,
               "warning_threshold": 1.0, "warning_email": "victim@example.com"}),
    )
    .error();
    assert_eq!(all_accounts(&s), before, "no account for a stranger");

    // The portal's "Buy credits" link opens the account, without a database and without
    // a trial; a hashed link opens nothing.
    let web = Web::new(&s.base);
    let hashed = web.get(&format!(
        "/iap/1/credit?dbuuid=farm&service_name=sms&hashed=1&account_token={}",
        tok("buyer-2").sha1_hex()
    ));
    assert_ne!(hashed.status, 303, "{}", hashed.body);
    assert_eq!(all_accounts(&s), before);
    let entry = web.get("/iap/1/credit?dbuuid=farm&service_name=sms&account_token=buyer-1");
    assert_eq!(entry.status, 303, "{}", entry.body);
    let sms = s.db.store.service_by_name("sms")?;
    let buyer = account(&s, sms.id, "buyer-1").ok_or("opened by the link")?;
    assert_eq!(buyer.dbuuid, None, "a link does not fix the database");
    assert_eq!(lots(&s, buyer.id), 0, "no trial for a link");
    Ok(())
}

/// Finding 3: what callers without a key can trigger is limited per client address.
pub fn unauthenticated_calls_are_rate_limited(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start_with(backend, |settings| {
        settings.limits.unauthenticated_burst = 5;
        settings.limits.unauthenticated_per_second = 0.01;
    })?;
    let sms = s.service("sms", "sms-key", None);
    s.grant(&sms, "tok-a", 10);
    for _ in 0..5 {
        balance(&s, "tok-a", "sms", "db-1").result();
    }
    let (name, message) = balance(&s, "tok-a", "sms", "db-1").error();
    assert!(name.ends_with("UserError"), "{name}");
    assert!(message.contains("Too many requests"), "{message}");
    let page =
        Web::new(&s.base).get("/iap/1/credit?dbuuid=db-1&service_name=sms&account_token=tok-a");
    assert_eq!(page.status, 429, "{}", page.body);
    // Providers authenticate with their key: not limited with the strangers.
    authorize(&s, "sms-key", "tok-a", 1.0, Some("db-1")).result();
    Ok(())
}

/// Finding 3: a bound on the accounts providers can open for one database.
pub fn accounts_per_database_bounded(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start_with(backend, |settings| {
        settings.limits.accounts_per_database = 3
    })?;
    let sms = s.service("sms", "sms-key", None);
    for n in 0..4 {
        s.grant(&sms, &format!("tok-{n}"), 10);
    }
    for n in 0..3 {
        authorize(&s, "sms-key", &format!("tok-{n}"), 1.0, Some("db-1")).result();
    }
    let before = all_accounts(&s);
    let (name, message) = authorize(&s, "sms-key", "tok-3", 1.0, Some("db-1")).error();
    assert!(name.ends_with("AccessError"), "{name}");
    assert!(message.contains("accounts"), "{message}");
    let (name, _) = authorize(&s, "sms-key", "tok-new", 1.0, Some("db-1")).error();
    assert!(name.ends_with("AccessError"), "{name}");
    assert_eq!(all_accounts(&s), before, "no account opened past the bound");
    assert_eq!(account(&s, sms.id, "tok-3").ok_or("tok-3")?.dbuuid, None);
    // Other databases are not affected.
    authorize(&s, "sms-key", "tok-3", 1.0, Some("db-2")).result();
    Ok(())
}

/// Finding 10: a hold of 0 credits is refused and changes nothing.
pub fn zero_credit_hold_refused(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "sms-key", None);
    s.grant(&sms, "tok-a", 10);
    let (name, message) = authorize(&s, "sms-key", "tok-a", 0.0, Some("db-1")).error();
    assert!(name.ends_with("UserError"), "{name}");
    assert!(message.contains("credit"), "{message}");
    let a = account(&s, sms.id, "tok-a").ok_or("tok-a")?;
    assert!(s.db.store.open_holds(a.id)?.is_empty());
    Ok(())
}

/// Finding 10: an authorize refused for lack of credit registers nothing.
pub fn refused_authorize_registers_nothing(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "sms-key", Some((2, 0)));
    let before = all_accounts(&s);
    let (name, message) = authorize(&s, "sms-key", "tok-new", 3.0, Some("db-1")).error();
    assert_eq!(name, INSUFFICIENT);
    let payload: Value = serde_json::from_str(&message)?;
    assert_eq!(payload["trial"], true, "db-1 can still have its trial");
    assert!(account(&s, sms.id, "tok-new").is_none(), "not registered");
    assert_eq!(all_accounts(&s), before);
    // Within the trial it registers, bound to db-1, with the trial.
    authorize(&s, "sms-key", "tok-new", 2.0, Some("db-1")).result();
    let a = account(&s, sms.id, "tok-new").ok_or("registered")?;
    assert_eq!(a.dbuuid.as_deref(), Some("db-1"));
    Ok(())
}

/// Finding 10: cancel after expiry answers `true` (the hold's credits are already back),
/// capture after expiry is an AccessError, and the README says exactly that.
pub fn cancel_after_expiry_matches_readme(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let sms = s.service("sms", "sms-key", None);
    s.grant(&sms, "tok-a", 10);
    let tx = authorize(&s, "sms-key", "tok-a", 2.0, Some("db-1"))
        .result()
        .as_str()
        .ok_or("transaction")?
        .to_owned();
    let tx2 = authorize(&s, "sms-key", "tok-a", 3.0, Some("db-1"))
        .result()
        .as_str()
        .ok_or("transaction")?
        .to_owned();
    s.db.advance(4321 * HOUR);
    assert_eq!(
        s.call("/iap/1/cancel", json!({"token": tx, "key": "sms-key"}))
            .result(),
        &json!(true)
    );
    let (name, message) = s
        .call("/iap/1/capture", json!({"token": tx2, "key": "sms-key"}))
        .error();
    assert!(name.ends_with("AccessError"), "{name}");
    assert!(message.contains("expired"), "{message}");
    assert_eq!(balance(&s, "tok-a", "sms", "db-1").result(), &json!(10.0));

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))?;
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("`/iap/1/cancel` of an expired transaction answers `true`"),
        "the README must say what cancel after expiry answers"
    );
    assert!(
        !flat.contains("unknown / closed / expired transaction"),
        "the README lists every expired transaction as AccessError"
    );
    Ok(())
}

/// A paid portal purchase is an authenticated first contact: it binds an account without
/// a database to the database of the portal session the order was placed from (the
/// "Buy credits" link's), when the order is credited, never re-binding it afterwards; an
/// order that is cancelled binds nothing.
pub fn portal_purchase_binds_the_database(backend: &Backend) -> Result<(), Failed> {
    let s = crate::portal_web::sidecar(backend)?;
    let sms = crate::portal_web::service_with_packs(&s, "sms");
    let dbuuid = |s: &Sidecar| account(s, sms.id, "buyer").and_then(|a| a.dbuuid);

    // Odoo's reads open nothing; the "Buy credits" link from db-D opens the account,
    // without a database.
    assert_eq!(balance(&s, "buyer", "sms", "db-D").result(), &json!(0.0));
    assert!(
        account(&s, sms.id, "buyer").is_none(),
        "a read opens nothing"
    );
    let open = |dbuuid: &str| -> Result<(Web, String), Failed> {
        let web = Web::new(&s.base);
        let entry = web.get(&format!(
            "/iap/1/credit?dbuuid={dbuuid}&service_name=sms&account_token=buyer"
        ));
        let csrf = crate::portal_web::csrf(web.follow(&entry).expect(200, "account page"));
        Ok((web, csrf))
    };
    let (from_d, csrf_d) = open("db-D")?;
    let id = account(&s, sms.id, "buyer").ok_or("opened by the link")?.id;
    assert_eq!(dbuuid(&s), None, "a link does not fix the database");
    let order = |web: &Web, csrf: &str| -> Result<OrderId, Failed> {
        let placed = web.post_form(
            &format!("/portal/accounts/{id}/orders"),
            &[("csrf", csrf), ("pack_id", "1")],
        );
        assert_eq!(placed.status, 303, "order placed: {}", placed.body);
        let location = placed.location.ok_or("order page")?;
        Ok(location.rsplit('/').next().ok_or("id")?.parse()?)
    };

    // An order cancelled by the customer binds nothing.
    let cancelled = order(&from_d, &csrf_d)?;
    let p = from_d.post_form(
        &format!("/portal/orders/{cancelled}/cancel"),
        &[("csrf", &csrf_d)],
    );
    assert_eq!(p.status, 303, "cancelled: {}", p.body);
    assert_eq!(dbuuid(&s), None, "a cancelled order binds nothing");

    // Two orders while the account has no database: one from db-D's session, one from
    // db-E's. Ordering alone binds nothing.
    let paid_d = order(&from_d, &csrf_d)?;
    let (from_e, csrf_e) = open("db-E")?;
    let paid_e = order(&from_e, &csrf_e)?;
    assert_eq!(dbuuid(&s), None, "an unpaid order binds nothing");

    // db-D's order is paid (the payment webhook): the account now belongs to db-D.
    let event = json!({"id": "evt-d", "type": "payment.succeeded", "order_id": paid_d,
                       "amount_minor": 500, "currency": "EUR"})
    .to_string();
    let now = crate::portal_web::now_secs(&s);
    let p = Web::new(&s.base).webhook(&event, crate::portal_web::WEBHOOK_SECRET, now);
    assert_eq!(p.status, 200, "webhook: {}", p.body);
    assert_eq!(dbuuid(&s).as_deref(), Some("db-D"), "bound by the purchase");

    // db-E's order is paid too (the operator confirms): credited, but not re-bound.
    let admin = s.db.store.create_admin_token("ops")?;
    let p = Web::new(&s.base).post_raw(
        &format!("/api/v1/orders/{paid_e}/confirm"),
        b"",
        &[("authorization", format!("Bearer {admin}"))],
    );
    assert_eq!(p.status, 200, "confirm: {}", p.body);
    assert!(
        p.body.contains(r#""dbuuid":"db-E""#),
        "the admin API shows the order's database: {}",
        p.body
    );
    assert_eq!(dbuuid(&s).as_deref(), Some("db-D"), "never re-bound");
    assert_eq!(
        s.db.store.balance(id)?.available,
        iap_sidecar::ledger::Credits::whole(20)?,
        "both orders credited"
    );

    // From now on db-E's link is a claim like any other: its session and orders carry
    // the account's own database, and its purchases change nothing.
    let (again_e, csrf_again) = open("db-E")?;
    let later = order(&again_e, &csrf_again)?;
    let p = Web::new(&s.base).post_raw(
        &format!("/api/v1/orders/{later}/confirm"),
        b"",
        &[("authorization", format!("Bearer {admin}"))],
    );
    assert_eq!(p.status, 200, "confirm: {}", p.body);
    assert_eq!(dbuuid(&s).as_deref(), Some("db-D"));
    let order_dbs: Vec<Option<String>> = [cancelled, paid_d, paid_e, later]
        .iter()
        .map(|o| s.db.store.order(*o).map(|o| o.dbuuid))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        order_dbs,
        vec![
            Some("db-D".to_owned()),
            Some("db-D".to_owned()),
            Some("db-E".to_owned()),
            None
        ],
        "orders keep the database they would bind, only while the account had none"
    );
    Ok(())
}
