//! Orders and their payment over real HTTP: the payment webhook's refusals, confirming
//! twice (and concurrently) credits once, and crediting is one transaction.

use std::sync::{Arc, Barrier};

use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{AccountId, EntryKind, LotId, ServiceId};
use iap_sidecar::payments::{Confirmation, OrderId, OrderStatus, PackId};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::portal_web::{WEBHOOK_SECRET, Web, csrf, now_secs, service_with_packs, sidecar};
use crate::rpc::Sidecar;
use crate::support::{Backend, audit_clean};

/// The credits an account received from order `id`: lots and journal entries.
fn credited(sc: &Sidecar, account: AccountId, order: OrderId) -> (usize, usize) {
    let reference = format!("order:{order}");
    let lots: Vec<LotId> = sc
        .db
        .store
        .lots(account)
        .expect("lots")
        .into_iter()
        .filter(|l| l.reference.as_deref() == Some(reference.as_str()))
        .map(|l| l.id)
        .collect();
    let entries = sc
        .db
        .store
        .journal(account, None, 500)
        .expect("journal")
        .into_iter()
        .filter(|e| e.kind == EntryKind::Topup && e.lot_id.is_some_and(|l| lots.contains(&l)))
        .count();
    (lots.len(), entries)
}

fn event(id: &str, kind: &str, order: OrderId, amount_minor: i64) -> String {
    json!({"id": id, "type": kind, "order_id": order, "amount_minor": amount_minor, "currency": "EUR"})
        .to_string()
}

fn json(page: &crate::portal_web::Page) -> Value {
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", page.body))
}

/// A customer orders through the portal; the webhook is refused unless signed, fresh
/// and new; a valid event credits once.
pub fn webhook_refusals(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    service_with_packs(&sc, "sms");
    let web = Web::new(&sc.base);
    let page =
        web.follow(&web.get("/iap/1/credit?dbuuid=db-w&service_name=sms&account_token=tok-w"));
    let token = csrf(page.expect(200, "account page"));
    let account = sc
        .db
        .store
        .find_account(
            ServiceId::from_stored(1),
            &AccountToken::from_raw("tok-w").expect("token"),
        )
        .expect("lookup")
        .expect("account")
        .id;
    let p = web.post_form(
        &format!("/portal/accounts/{account}/orders"),
        &[("csrf", &token), ("pack_id", "2")],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let order_path = p.location.clone().expect("order page");
    let order: OrderId = order_path
        .rsplit('/')
        .next()
        .expect("id")
        .parse()
        .expect("order id");
    let html = web.get(&order_path).body;
    assert!(
        html.contains("Awaiting payment") && html.contains("40.00 EUR"),
        "{html}"
    );

    let api = Web::new(&sc.base);
    let now = now_secs(&sc);
    let good = event("evt_1", "payment.succeeded", order, 4000);
    let nothing_yet = |what: &str| {
        assert_eq!(
            credited(&sc, account, order),
            (0, 0),
            "{what}: nothing credited"
        );
        assert_eq!(
            sc.db.store.order(order).expect("order").status,
            OrderStatus::Pending,
            "{what}"
        );
        assert!(
            sc.db
                .store
                .balance(account)
                .expect("balance")
                .balance
                .is_zero(),
            "{what}"
        );
    };
    // Bad signatures: another secret, an altered body, a garbled header, none at all.
    let p = api.webhook(&good, "whsec_someone_else_entirely", now);
    assert_eq!(p.status, 401, "{}", p.body);
    assert_eq!(json(&p)["type"], "urn:iap-sidecar:problem:bad_signature");
    nothing_yet("wrong secret");
    let ts = now.to_string();
    let sig = iap_sidecar::payments::webhook::sign(WEBHOOK_SECRET.as_bytes(), &ts, good.as_bytes());
    let altered = good.replace("4000", "4001");
    let p = api.post_raw(
        "/api/v1/payments/webhook",
        altered.as_bytes(),
        &[
            ("x-iap-timestamp", ts.clone()),
            ("x-iap-signature", sig.clone()),
        ],
    );
    assert_eq!(p.status, 401, "{}", p.body);
    // The signature covers the timestamp: moving it is a bad signature too.
    let p = api.post_raw(
        "/api/v1/payments/webhook",
        good.as_bytes(),
        &[
            ("x-iap-timestamp", (now + 1).to_string()),
            ("x-iap-signature", sig.clone()),
        ],
    );
    assert_eq!(json(&p)["type"], "urn:iap-sidecar:problem:bad_signature");
    let p = api.post_raw(
        "/api/v1/payments/webhook",
        good.as_bytes(),
        &[
            ("x-iap-timestamp", ts.clone()),
            ("x-iap-signature", "sha256=00".into()),
        ],
    );
    assert_eq!(p.status, 401);
    let p = api.post_raw("/api/v1/payments/webhook", good.as_bytes(), &[]);
    assert_eq!(
        json(&p)["type"],
        "urn:iap-sidecar:problem:missing_signature"
    );
    nothing_yet("unsigned");
    // Stale, in either direction, even when correctly signed.
    for ts in [now - 301, now + 301] {
        let p = api.webhook(&good, WEBHOOK_SECRET, ts);
        assert_eq!(p.status, 401, "{}", p.body);
        assert_eq!(json(&p)["type"], "urn:iap-sidecar:problem:stale_timestamp");
    }
    nothing_yet("stale");
    // Signed and fresh but wrong: amount, currency, unknown order, malformed event.
    let p = api.webhook(
        &event("evt_2", "payment.succeeded", order, 3999),
        WEBHOOK_SECRET,
        now,
    );
    assert_eq!(p.status, 422, "{}", p.body);
    let usd = good.replace("EUR", "USD").replace("evt_1", "evt_usd");
    assert_eq!(api.webhook(&usd, WEBHOOK_SECRET, now).status, 422);
    assert_eq!(
        api.webhook(
            &event(
                "evt_3",
                "payment.succeeded",
                OrderId::from_stored(999),
                4000
            ),
            WEBHOOK_SECRET,
            now
        )
        .status,
        404
    );
    let p = api.webhook("{\"id\":\"x\"}", WEBHOOK_SECRET, now);
    assert_eq!(json(&p)["type"], "urn:iap-sidecar:problem:invalid_event");
    nothing_yet("wrong events");

    // A valid event credits the order once.
    let p = api.webhook(&good, WEBHOOK_SECRET, now - 299);
    assert_eq!(p.status, 200, "{}", p.body);
    let body = json(&p);
    assert_eq!(
        (body["credited_now"].as_bool(), body["duplicate"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(body["order"]["status"], "credited");
    assert_eq!(body["order"]["confirmed_by"], "webhook");
    assert_eq!(credited(&sc, account, order), (1, 1));
    // Replayed event id: acknowledged (so the sender stops retrying), nothing credited.
    for ts in [now - 299, now + 10] {
        let p = api.webhook(&good, WEBHOOK_SECRET, ts);
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(json(&p)["duplicate"], true);
        assert_eq!(json(&p)["credited_now"], false);
    }
    // The same id with another body is refused.
    let other_body = good.replace("\"currency\"", "\"reference\":\"pi_2\",\"currency\"");
    assert_eq!(api.webhook(&other_body, WEBHOOK_SECRET, now).status, 409);
    // Another event for the same paid order credits nothing more.
    let p = api.webhook(
        &event("evt_4", "payment.succeeded", order, 4000),
        WEBHOOK_SECRET,
        now,
    );
    assert_eq!(
        (p.status, json(&p)["credited_now"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(credited(&sc, account, order), (1, 1));
    // A late failure event leaves the credit alone.
    let p = api.webhook(
        &event("evt_5", "payment.failed", order, 4000),
        WEBHOOK_SECRET,
        now,
    );
    assert_eq!(json(&p)["order"]["status"], "credited");
    assert_eq!(
        sc.db
            .store
            .balance(account)
            .expect("balance")
            .available
            .units(),
        100 * 10_000
    );
    audit_clean(&sc.db.store, account)?;
    let html = web.get(&order_path).body;
    assert!(html.contains("Paid and credited"), "{html}");

    // A failure event cancels a pending order.
    let second = sc
        .db
        .store
        .create_order(account, PackId::from_stored(1))
        .expect("order");
    let p = api.webhook(
        &event("evt_6", "payment.failed", second.id, 500),
        WEBHOOK_SECRET,
        now,
    );
    assert_eq!(json(&p)["order"]["status"], "cancelled", "{}", p.body);
    let p = api.webhook(
        &event("evt_7", "payment.succeeded", second.id, 500),
        WEBHOOK_SECRET,
        now,
    );
    assert_eq!(
        p.status, 409,
        "a cancelled order is not credited: {}",
        p.body
    );
    assert_eq!(credited(&sc, account, second.id), (0, 0));

    // Without a secret configured the webhook is off.
    let off = Sidecar::start(backend)?;
    let p = Web::new(&off.base).webhook(&good, WEBHOOK_SECRET, now);
    assert_eq!(p.status, 503, "{}", p.body);
    Ok(())
}

/// Operator and admin confirmations: twice (and concurrently) credits once; crediting
/// is one transaction with the lot and its journal entry.
pub fn confirm_credits_once(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    sc.grant(&sms, "tok-c", 1);
    let account = sc
        .db
        .store
        .find_account(sms.id, &AccountToken::from_raw("tok-c").expect("token"))
        .expect("lookup")
        .expect("account")
        .id;
    let admin_token = sc.db.store.create_admin_token("ops").expect("admin token");
    let admin = |path: &str, body: &str| {
        let client = Web::new(&sc.base);
        client.post_raw(
            path,
            body.as_bytes(),
            &[("authorization", format!("Bearer {admin_token}"))],
        )
    };

    // Admin API, twice.
    let order = sc
        .db
        .store
        .create_order(account, PackId::from_stored(2))
        .expect("order");
    let p = admin(
        &format!("/api/v1/orders/{}/confirm", order.id),
        r#"{"reference":"bank-42"}"#,
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let body = json(&p);
    assert_eq!(body["credited_now"], true);
    assert_eq!(body["order"]["payment_reference"], "bank-42");
    assert_eq!(body["order"]["confirmed_by"], "admin:ops");
    let p = admin(&format!("/api/v1/orders/{}/confirm", order.id), "");
    assert_eq!(
        (p.status, json(&p)["credited_now"].as_bool()),
        (200, Some(false)),
        "{}",
        p.body
    );
    assert_eq!(credited(&sc, account, order.id), (1, 1));
    assert_eq!(admin("/api/v1/orders/999/confirm", "").status, 404);
    let p = admin(&format!("/api/v1/orders/{}/cancel", order.id), "");
    assert_eq!(
        p.status, 409,
        "a credited order cannot be cancelled: {}",
        p.body
    );
    let unauthenticated =
        Web::new(&sc.base).post_raw(&format!("/api/v1/orders/{}/confirm", order.id), b"", &[]);
    assert_eq!(unauthenticated.status, 401);
    // The lot and the journal entry of the credit.
    let stored = sc.db.store.order(order.id).expect("order");
    let lot = stored.lot_id.expect("lot of the order");
    let entry = sc
        .db
        .store
        .journal(account, None, 10)
        .expect("journal")
        .into_iter()
        .find(|e| e.lot_id == Some(lot))
        .expect("entry");
    assert_eq!(
        (entry.kind, entry.amount_units),
        (EntryKind::Topup, 100 * 10_000)
    );
    assert!(
        entry
            .description
            .as_deref()
            .is_some_and(|d| d.contains(&format!("Order #{}", order.id)))
    );

    // Many confirmations at once, through the store (CLI) and the API: one credit.
    let order = sc
        .db
        .store
        .create_order(account, PackId::from_stored(1))
        .expect("order");
    let barrier = Arc::new(Barrier::new(6));
    std::thread::scope(|scope| {
        for i in 0..6 {
            let barrier = Arc::clone(&barrier);
            let store = sc.db.store.clone();
            let path = format!("/api/v1/orders/{}/confirm", order.id);
            let admin = &admin;
            scope.spawn(move || {
                barrier.wait();
                if i % 2 == 0 {
                    store
                        .confirm_order(
                            order.id,
                            &Confirmation {
                                by: "operator".into(),
                                reference: None,
                            },
                        )
                        .expect("confirm");
                } else {
                    assert_eq!(admin(&path, "").status, 200);
                }
            });
        }
    });
    assert_eq!(credited(&sc, account, order.id), (1, 1));
    assert_eq!(
        sc.db
            .store
            .balance(account)
            .expect("balance")
            .balance
            .units(),
        111 * 10_000
    );

    // Crediting is one transaction: if marking the order credited fails, neither the lot
    // nor its journal entry remain, and the order is not credited.
    let order = sc
        .db
        .store
        .create_order(account, PackId::from_stored(1))
        .expect("order");
    let before = sc
        .db
        .store
        .journal(account, None, 500)
        .expect("journal")
        .len();
    match backend {
        Backend::Sqlite => {
            sc.db.raw_execute(
                "CREATE TRIGGER fail_credit BEFORE UPDATE OF status ON orders \
                 WHEN NEW.status = 'credited' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )?;
        }
        Backend::Postgres { .. } => {
            sc.db.raw_execute(
                "CREATE FUNCTION fail_credit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.status = 'credited' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                 RETURN NEW; END $$",
            )?;
            sc.db.raw_execute(
                "CREATE TRIGGER fail_credit BEFORE UPDATE ON orders FOR EACH ROW \
                 EXECUTE FUNCTION fail_credit()",
            )?;
        }
    }
    let p = admin(&format!("/api/v1/orders/{}/confirm", order.id), "");
    assert_eq!(p.status, 500, "{}", p.body);
    assert_eq!(credited(&sc, account, order.id), (0, 0));
    assert_eq!(
        sc.db
            .store
            .journal(account, None, 500)
            .expect("journal")
            .len(),
        before
    );
    assert_eq!(
        sc.db.store.order(order.id).expect("order").status,
        OrderStatus::Pending
    );
    audit_clean(&sc.db.store, account)?;
    sc.db
        .raw_execute("DROP TRIGGER fail_credit ON orders")
        .or_else(|_| sc.db.raw_execute("DROP TRIGGER fail_credit"))?;
    let outcome = sc
        .db
        .store
        .confirm_order(
            order.id,
            &Confirmation {
                by: "operator".into(),
                reference: None,
            },
        )
        .expect("confirm");
    assert!(outcome.credited_now);
    assert_eq!(credited(&sc, account, order.id), (1, 1));
    audit_clean(&sc.db.store, account)?;

    // A payment the ledger cannot credit (it would pass 10^12 credits) is kept as paid,
    // with nothing of the attempt left; the answer says why.
    let huge = sc
        .db
        .store
        .create_pack(
            sms.id,
            &iap_sidecar::payments::PackInput {
                name: "Everything".into(),
                credits: iap_sidecar::ledger::Credits::from_units(
                    iap_sidecar::ledger::credits::MAX_UNITS,
                )
                .expect("max"),
                price: iap_sidecar::payments::Price::parse("1", "EUR").expect("price"),
                active: true,
            },
        )
        .expect("pack");
    let order_huge = sc.db.store.create_order(account, huge.id).expect("order");
    let p = admin(&format!("/api/v1/orders/{}/confirm", order_huge.id), "");
    assert_eq!(p.status, 200, "{}", p.body);
    let body = json(&p);
    assert_eq!(body["credited_now"], false, "{body}");
    assert_eq!(body["order"]["status"], "paid", "{body}");
    assert!(
        body["credit_error"]
            .as_str()
            .is_some_and(|e| e.contains("exceeds")),
        "{body}"
    );
    assert_eq!(credited(&sc, account, order_huge.id), (0, 0));
    audit_clean(&sc.db.store, account)?;

    // The portal shows the purchase on the statement and the orders list.
    let web = Web::new(&sc.base);
    let html = web
        .follow(&web.get("/iap/1/credit?dbuuid=db-c&service_name=sms&account_token=tok-c"))
        .body;
    assert!(
        html.contains(&format!("Order #{}: Starter", order.id)) && html.contains("Credited"),
        "{html}"
    );
    let csv = web.get(&format!("/portal/accounts/{account}/journal.csv"));
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|d| d.contains("attachment"))
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "seq,time_utc,kind,description,amount,balance_after"
    );
    assert_eq!(lines.len(), 5, "{}", csv.body);
    assert!(
        lines[1].starts_with("1,") && lines[1].contains(",grant,"),
        "oldest first: {}",
        csv.body
    );
    assert!(
        lines[4].contains(&format!("topup,Order #{}: Starter,10,121", order.id)),
        "{}",
        csv.body
    );
    Ok(())
}
