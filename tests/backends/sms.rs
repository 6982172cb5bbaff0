//! Odoo's SMS through the sidecar, over real HTTP on both backends: the send call's
//! per-message answers and charges, the outbox through a gateway (the JSON webhook
//! adapter, posting to a relay run by the test), receipts, delivery reports to an
//! Odoo-shaped `/sms/status`, registration, and bad input. The same flows against real
//! Odoo 17/18/19 and the SMPP and Twilio gateways run in `tests/odoo_sms/` and
//! `sms_gateways`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::rpc::Sidecar;
use crate::support::Backend;

const SECRET: &str = "relay-secret-of-at-least-32-characters!";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// What the relay (the operator's SMS provider) and Odoo's `/sms/status` saw.
#[derive(Default)]
struct Seen {
    /// Messages the relay took: (id = Odoo uuid, to, text, segments).
    messages: Vec<Value>,
    /// Relay is down: answers 503.
    down: bool,
    /// Numbers the relay refuses for good.
    refuse: Vec<String>,
    /// `message_statuses` groups Odoo received, in order.
    reports: Vec<Value>,
}

/// The relay and the Odoo stand-in, on one loopback server.
struct Peers {
    seen: Arc<Mutex<Seen>>,
    base: String,
    handle: actix_web::dev::ServerHandle,
    rt: tokio::runtime::Runtime,
}

async fn relay(
    body: web::Bytes,
    seen: web::Data<Arc<Mutex<Seen>>>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    let signature = req
        .headers()
        .get("x-iap-sidecar-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if signature != iap_sidecar::sms::gateway::webhook::signature(SECRET, &body) {
        return HttpResponse::Forbidden().finish();
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    let mut seen = seen.lock().expect("lock");
    if seen.down {
        return HttpResponse::ServiceUnavailable().finish();
    }
    if seen.refuse.iter().any(|n| message["to"] == json!(n)) {
        return HttpResponse::BadRequest().json(json!({"failure": "invalid_destination"}));
    }
    let reference = format!("ref-{}", message["id"].as_str().unwrap_or_default());
    seen.messages.push(message);
    HttpResponse::Ok().json(json!({"reference": reference}))
}

async fn odoo_status(body: web::Json<Value>, seen: web::Data<Arc<Mutex<Seen>>>) -> HttpResponse {
    let groups = body["params"]["message_statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    seen.lock().expect("lock").reports.extend(groups);
    HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": body["id"], "result": "OK"}))
}

impl Peers {
    fn start() -> Result<Peers, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let data = web::Data::new(seen.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let base = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let server = rt.block_on(async {
            HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .route("/relay", web::post().to(relay))
                    .route("/sms/status", web::post().to(odoo_status))
            })
            .workers(1)
            .listen(listener)
            .map(|s| s.run())
        });
        let server = server.map_err(|e| e.to_string())?;
        let handle = server.handle();
        rt.spawn(server);
        Ok(Peers {
            seen,
            base,
            handle,
            rt,
        })
    }

    fn seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().expect("lock"))
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.rt.block_on(self.handle.stop(false));
    }
}

/// Waits until `ready` holds, at most 20 s (the worker runs on its own).
fn eventually(what: &str, mut ready: impl FnMut() -> bool) -> Result<(), Failed> {
    let until = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if Instant::now() > until {
            return Err(format!("timed out waiting for: {what}").into());
        }
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(20));
    }
    Ok(())
}

fn sidecar(backend: &Backend, peers: &Peers, prices: &[(&str, &str)]) -> Result<Sidecar, Failed> {
    let relay = format!("{}/relay", peers.base);
    let prices: Vec<(String, String)> = prices
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let sidecar = Sidecar::start_with(backend, move |s| {
        s.sms.gateway = Some("relay".into());
        s.sms.gateways.insert(
            "relay".into(),
            serde_json::from_value(json!({"kind": "webhook", "url": relay, "secret": SECRET}))
                .expect("gateway settings"),
        );
        s.sms.prices = prices.into_iter().collect();
        s.sms.poll_interval_secs = 1;
        s.odoo.allowed_hosts = vec!["127.0.0.1".into()];
    })?;
    sidecar.service("sms", "key-sms", None);
    Ok(sidecar)
}

fn uuid(n: u32) -> String {
    format!("{n:032x}")
}

fn send(sidecar: &Sidecar, peers: &Peers, groups: Value) -> Value {
    sidecar
        .call(
            "/api/sms/3/send",
            json!({"messages": groups, "account_token": TOKEN, "dbuuid": "db-1",
                   "webhook_url": format!("{}/sms/status", peers.base)}),
        )
        .result()
        .clone()
}

fn states(result: &Value) -> Vec<(String, String)> {
    result
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["uuid"].as_str().unwrap_or_default().to_owned(),
                r["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn available(sidecar: &Sidecar) -> f64 {
    let result = sidecar
        .call(
            "/iap/1/get-accounts-information",
            json!({"iap_accounts": [{"token": TOKEN, "service": "sms"}], "dbuuid": "db-1"}),
        )
        .result()
        .clone();
    result[TOKEN]["balance"].as_f64().unwrap_or(-1.0)
}

/// Every uuid answered in order; per-message refusals; charges per segment and country;
/// the same call again charges and sends nothing more.
pub fn sms_send_charges_per_segment(backend: &Backend) -> Result<(), Failed> {
    let peers = Peers::start()?;
    let sidecar = sidecar(backend, &peers, &[("32", "0.5"), ("33", "1")])?;
    let service = sidecar
        .db
        .store
        .service_by_name("sms")
        .map_err(|e| e.to_string())?;
    sidecar.grant(&service, TOKEN, 10);
    let long_gsm = "a".repeat(161); // 2 segments
    let ucs2 = "é€".repeat(36); // 72 UTF-16 units: 2 segments
    let groups = json!([
        {"content": long_gsm, "numbers": [
            {"uuid": uuid(1), "number": "+32470000001"},
            {"uuid": uuid(2), "number": "+33600000002"}]},
        {"content": ucs2, "numbers": [
            {"uuid": uuid(3), "number": "+32 470 00 00 03"},
            {"uuid": uuid(4), "number": false},
            {"uuid": uuid(5), "number": "call me"},
            {"uuid": uuid(6), "number": "+15555550100"}]},
    ]);
    let first = send(&sidecar, &peers, groups.clone());
    let expected = [
        (uuid(1), "success"),
        (uuid(2), "success"),
        (uuid(3), "success"),
        (uuid(4), "sms_number_missing"),
        (uuid(5), "wrong_number_format"),
        (uuid(6), "country_not_supported"),
    ]
    .map(|(u, s)| (u, s.to_owned()))
    .to_vec();
    assert_eq!(states(&first), expected);
    // 2 × 0.5 + 2 × 1 + 2 × 0.5 held.
    assert_eq!(available(&sidecar), 6.0);
    let again = send(&sidecar, &peers, groups);
    assert_eq!(
        states(&again),
        expected,
        "a repeated call gets the same answers"
    );
    assert_eq!(
        available(&sidecar),
        6.0,
        "a repeated call charges nothing more"
    );

    eventually("three messages at the relay", || {
        peers.seen(|s| s.messages.len()) >= 3
    })?;
    eventually("three messages submitted", || {
        sidecar
            .db
            .raw_i64("SELECT COUNT(*) AS v FROM sms_messages WHERE status = 'submitted'")
            .is_ok_and(|n| n == 3)
    })?;
    let messages = peers.seen(|s| s.messages.clone());
    assert_eq!(messages.len(), 3, "each message sent once: {messages:?}");
    let to: Vec<&str> = messages.iter().filter_map(|m| m["to"].as_str()).collect();
    assert!(to.contains(&"+32470000003"), "number normalised: {to:?}");
    let ucs2_message = messages
        .iter()
        .find(|m| m["id"] == json!(uuid(3)))
        .expect("uuid 3");
    assert_eq!(ucs2_message["encoding"], "ucs2");
    assert_eq!(ucs2_message["segments"], 2);
    assert_eq!(ucs2_message["text"], json!("é€".repeat(36)));
    assert_eq!(available(&sidecar), 6.0, "captured, not given back");
    let store = &sidecar.db.store;
    let account = sidecar.db.account(service.id, TOKEN)?;
    crate::support::audit_clean(store, account.id)?;

    // The operator's view: prices, and the account's day.
    let admin = sidecar
        .db
        .store
        .create_admin_token("tests")
        .expect("admin token");
    let get = |path: &str| sidecar.rt_get(path, &admin);
    let (status, settings) = get("/api/v1/sms/settings");
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["gateway"], "relay");
    assert_eq!(
        settings["prices"],
        json!([{"country": "32", "per_segment": "0.5"}, {"country": "33", "per_segment": "1"}])
    );
    let (status, days) = get(&format!("/api/v1/accounts/{}/sms", account.id));
    assert_eq!(status, 200, "{days}");
    assert_eq!(days.as_array().map(Vec::len), Some(1), "{days}");
    assert_eq!(
        (days[0]["sent"].clone(), days[0]["spent"].clone()),
        (json!(3), json!("4"))
    );
    let (status, _) = get("/api/v1/accounts/999999/sms");
    assert_eq!(status, 404);
    let (status, _) = get(&format!("/api/v1/accounts/{}/sms?days=0", account.id));
    assert_eq!(status, 400);

    // The customer's view: Odoo's "Register now" link leads to the account's portal
    // page, which shows the day's SMS.
    let web = crate::portal_web::Web::new(&sidecar.base);
    let register = web.get(&format!("/1/account?account_token={TOKEN}"));
    assert_eq!(register.status, 303, "{}", register.body);
    let mut page = web.follow(&register);
    for _ in 0..3 {
        if page.status != 303 {
            break;
        }
        page = web.follow(&page);
    }
    let body = page.expect(200, "the SMS account's page");
    assert!(body.contains("SMS per day"), "{body}");
    assert!(body.contains(r#"id="sms""#), "{body}");

    eventually("Odoo told `sent` for the three", || {
        peers.seen(|s| {
            s.reports
                .iter()
                .filter(|g| g["sms_status"] == "sent")
                .map(|g| g["uuids"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
                == 3
        })
    })?;
    Ok(())
}

/// Credits for 2 of 5: exactly 2 go out, 3 answered `insufficient_credit`; an unknown
/// token is answered and writes nothing.
pub fn sms_insufficient_credit_per_message(backend: &Backend) -> Result<(), Failed> {
    let peers = Peers::start()?;
    let sidecar = sidecar(backend, &peers, &[("*", "1")])?;
    let service = sidecar
        .db
        .store
        .service_by_name("sms")
        .map_err(|e| e.to_string())?;
    sidecar.grant(&service, TOKEN, 2);
    let numbers: Vec<Value> = (1..=5)
        .map(|n| json!({"uuid": uuid(n), "number": format!("+3247000000{n}")}))
        .collect();
    let result = send(
        &sidecar,
        &peers,
        json!([{"content": "Hello", "numbers": numbers}]),
    );
    let got = states(&result);
    assert_eq!(
        got.iter().filter(|(_, s)| s == "success").count(),
        2,
        "{got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|(_, s)| s == "insufficient_credit")
            .count(),
        3,
        "{got:?}"
    );
    assert_eq!(available(&sidecar), 0.0);
    eventually("two submitted", || {
        sidecar
            .db
            .raw_i64("SELECT COUNT(*) AS v FROM sms_messages WHERE status = 'submitted'")
            .is_ok_and(|n| n == 2)
    })?;
    assert_eq!(peers.seen(|s| s.messages.len()), 2);

    // The same uuid twice in one call is one message, paid once (none are left: it is
    // refused once, and nothing breaks).
    sidecar.grant(&service, TOKEN, 1);
    let twice = send(
        &sidecar,
        &peers,
        json!([{"content": "Twice", "numbers": [
            {"uuid": uuid(8), "number": "+32470000008"},
            {"uuid": uuid(8), "number": "+32470000008"}]}]),
    );
    assert_eq!(states(&twice)[0], (uuid(8), "success".to_owned()));
    assert_eq!(available(&sidecar), 0.0, "charged once");
    assert_eq!(
        sidecar.db.raw_i64(&format!(
            "SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}'",
            uuid(8)
        ))?,
        1
    );

    // A stranger's token: answered, nothing written.
    let rows = sidecar.db.raw_i64("SELECT COUNT(*) AS v FROM accounts")?;
    let stranger = sidecar
        .call(
            "/api/sms/3/send",
            json!({"messages": [{"content": "x", "numbers": [{"uuid": uuid(9), "number": "+32470000009"}]}],
                   "account_token": "ffffffffffffffffffffffffffffffff", "dbuuid": "db-2",
                   "webhook_url": format!("{}/sms/status", peers.base)}),
        )
        .result()
        .clone();
    assert_eq!(
        states(&stranger),
        vec![(uuid(9), "insufficient_credit".to_owned())]
    );
    assert_eq!(
        sidecar.db.raw_i64("SELECT COUNT(*) AS v FROM accounts")?,
        rows
    );
    assert_eq!(
        sidecar
            .db
            .raw_i64("SELECT COUNT(*) AS v FROM sms_messages")?,
        3,
        "nothing queued for the stranger or the unpaid"
    );
    let account = sidecar.db.account(service.id, TOKEN)?;
    crate::support::audit_clean(&sidecar.db.store, account.id)?;
    Ok(())
}

/// The gateway down: nothing is lost or sent twice, messages go once it is back; a
/// refused number fails with its credits given back; one never taken expires and is
/// given back too; receipts move messages forward only, and bad callbacks change nothing.
pub fn sms_outbox_retries_refunds_and_receipts(backend: &Backend) -> Result<(), Failed> {
    let peers = Peers::start()?;
    let sidecar = sidecar(backend, &peers, &[("*", "1")])?;
    let service = sidecar
        .db
        .store
        .service_by_name("sms")
        .map_err(|e| e.to_string())?;
    sidecar.grant(&service, TOKEN, 10);
    peers.seen(|s| {
        s.down = true;
        s.refuse.push("+32470000004".into());
    });
    let numbers: Vec<Value> = (1..=4)
        .map(|n| json!({"uuid": uuid(n), "number": format!("+3247000000{n}")}))
        .collect();
    send(
        &sidecar,
        &peers,
        json!([{"content": "Hello", "numbers": numbers}]),
    );
    assert_eq!(available(&sidecar), 6.0);
    // A failed attempt is recorded (error, claim released) before the clock moves: its
    // retry time is counted from the clock at that moment.
    eventually("every message tried once", || {
        sidecar
            .db
            .raw_i64(
                "SELECT COUNT(*) AS v FROM sms_messages WHERE attempts >= 1 AND status = 'queued' \
                 AND last_error IS NOT NULL AND claimed_until = 0",
            )
            .is_ok_and(|n| n == 4)
    })?;
    assert!(peers.seen(|s| s.messages.is_empty()));
    // Back up; the retry is due once the clock passes the backoff (at most 300 s).
    peers.seen(|s| s.down = false);
    sidecar.db.advance(301_000_000);
    eventually("three sent, one refused", || {
        sidecar
            .db
            .raw_i64(
                "SELECT COUNT(*) AS v FROM sms_messages WHERE status IN ('submitted', 'failed')",
            )
            .is_ok_and(|n| n == 4)
    })?;
    assert_eq!(peers.seen(|s| s.messages.len()), 3, "none twice");
    assert_eq!(
        sidecar.db.raw_i64("SELECT COUNT(*) AS v FROM sms_messages WHERE status = 'failed' AND failure = 'invalid_destination' AND refunded")?,
        1
    );
    assert_eq!(available(&sidecar), 7.0, "the refused one is given back");

    // Receipts: delivered, then a late failure that must not move it back.
    let callback = |body: Value, signature: Option<String>| {
        let bytes = serde_json::to_vec(&body).expect("json");
        let signature = signature
            .unwrap_or_else(|| iap_sidecar::sms::gateway::webhook::signature(SECRET, &bytes));
        sidecar.rt_post_raw(
            "/sms/receipts/relay",
            bytes,
            &[("x-iap-sidecar-signature", &signature)],
        )
    };
    let (status, answer) = callback(
        json!({"reference": format!("ref-{}", uuid(1)), "status": "delivered"}),
        None,
    );
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)));
    let (status, answer) = callback(
        json!({"reference": format!("ref-{}", uuid(1)), "status": "delivered"}),
        None,
    );
    assert_eq!(
        (status, answer["known"].clone()),
        (200, json!(1)),
        "a replayed receipt changes nothing"
    );
    let (status, _) = callback(
        json!({"reference": format!("ref-{}", uuid(1)), "status": "rejected"}),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = callback(
        json!([{"reference": format!("ref-{}", uuid(2)), "status": "not_delivered"}]),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = callback(
        json!({"reference": format!("ref-{}", uuid(3)), "status": "exploded"}),
        None,
    );
    assert_eq!(status, 400, "an unknown status is refused");
    let (status, _) = callback(
        json!({"reference": format!("ref-{}", uuid(3)), "status": "delivered"}),
        Some("sha256=00".into()),
    );
    assert_eq!(status, 403, "a bad signature is refused");
    let (status, answer) = callback(
        json!({"reference": "ref-nobody", "status": "delivered"}),
        None,
    );
    assert_eq!((status, answer["unknown"].clone()), (200, json!(1)));
    assert_eq!(
        sidecar.db.raw_i64(&format!(
            "SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}' AND status = 'delivered'",
            uuid(1)
        ))?,
        1
    );
    assert_eq!(
        sidecar.db.raw_i64(&format!(
            "SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}' AND status = 'submitted'",
            uuid(3)
        ))?,
        1,
        "refused callbacks changed nothing"
    );
    assert_eq!(
        available(&sidecar),
        7.0,
        "a carrier's failure is not given back"
    );
    eventually("Odoo told delivered, not_delivered and the refusal", || {
        peers.seen(|s| {
            let words: Vec<&str> = s
                .reports
                .iter()
                .filter_map(|g| g["sms_status"].as_str())
                .collect();
            words.contains(&"delivered")
                && words.contains(&"not_delivered")
                && words.contains(&"invalid_destination")
        })
    })?;

    // Odoo's "Resend" puts the refused message back under its uuid: it goes again, paid
    // again; a delivered one sent again is answered and not sent twice.
    peers.seen(|s| s.refuse.clear());
    let resend = send(
        &sidecar,
        &peers,
        json!([{"content": "Hello", "numbers": [
            {"uuid": uuid(4), "number": "+32470000004"},
            {"uuid": uuid(1), "number": "+32470000001"}]}]),
    );
    assert_eq!(
        states(&resend),
        vec![
            (uuid(4), "success".to_owned()),
            (uuid(1), "success".to_owned())
        ]
    );
    assert_eq!(available(&sidecar), 6.0, "only the resent one is charged");
    eventually("the resent one at the relay", || {
        peers.seen(|s| s.messages.len()) == 4
    })?;
    eventually("the resent one submitted", || {
        sidecar
            .db
            .raw_i64(&format!(
                "SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}' AND status = 'submitted'",
                uuid(4)
            ))
            .is_ok_and(|n| n == 1)
    })?;
    assert_eq!(
        peers.seen(|s| s.messages.len()),
        4,
        "the delivered one is not sent again"
    );
    sidecar.grant(&service, TOKEN, 1);

    // One never taken: down again, past the give-up time → expired and given back.
    peers.seen(|s| s.down = true);
    send(
        &sidecar,
        &peers,
        json!([{"content": "Late", "numbers": [{"uuid": uuid(7), "number": "+32470000007"}]}]),
    );
    assert_eq!(available(&sidecar), 6.0);
    eventually("tried once", || {
        sidecar
            .db
            .raw_i64(&format!(
                "SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}' AND attempts >= 1 \
                 AND last_error IS NOT NULL AND claimed_until = 0",
                uuid(7)
            ))
            .is_ok_and(|n| n == 1)
    })?;
    sidecar.db.advance(25 * 3_600 * 1_000_000);
    eventually("expired", || {
        sidecar
            .db
            .raw_i64(&format!("SELECT COUNT(*) AS v FROM sms_messages WHERE uuid = '{}' AND status = 'failed' AND failure = 'expired' AND refunded", uuid(7)))
            .is_ok_and(|n| n == 1)
    })?;
    assert_eq!(available(&sidecar), 7.0, "the expired one is given back");
    let account = sidecar.db.account(service.id, TOKEN)?;
    crate::support::audit_clean(&sidecar.db.store, account.id)?;
    Ok(())
}

/// Odoo 18/19's registration: a code sent through the gateway, verified, a sender name
/// set once; `get-accounts-information` reports both. Strangers cause no SMS.
pub fn sms_registration_flow(backend: &Backend) -> Result<(), Failed> {
    let peers = Peers::start()?;
    let relay = format!("{}/relay", peers.base);
    let sidecar = Sidecar::start_with(backend, move |s| {
        s.sms.gateway = Some("relay".into());
        s.sms.gateways.insert(
            "relay".into(),
            serde_json::from_value(json!({"kind": "webhook", "url": relay, "secret": SECRET}))
                .expect("gateway settings"),
        );
        s.sms.prices = [("*".to_owned(), "1".to_owned())].into_iter().collect();
        s.sms.require_registration = true;
        s.sms.poll_interval_secs = 1;
    })?;
    let service = sidecar.service("sms", "key-sms", None);
    let call = |path: &str, params: Value| sidecar.call(path, params).result().clone();
    let stranger = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    assert_eq!(
        call(
            "/api/sms/1/account/create",
            json!({"phone_number": "+32470123456", "account_token": stranger})
        ),
        json!({"state": "no_sms_account"})
    );
    sidecar.grant(&service, TOKEN, 5);
    let info = || {
        call(
            "/iap/1/get-accounts-information",
            json!({"iap_accounts": [{"token": TOKEN, "service": "sms"}], "dbuuid": "db-1"}),
        )[TOKEN]
            .clone()
    };
    assert_eq!(info()["registered"], "unregistered");
    // Unregistered: its messages are answered `unregistered` and cost nothing.
    let result = send(
        &sidecar,
        &peers,
        json!([{"content": "x", "numbers": [{"uuid": uuid(1), "number": "+32470000001"}]}]),
    );
    assert_eq!(states(&result), vec![(uuid(1), "unregistered".to_owned())]);
    assert_eq!(
        call(
            "/api/sms/1/account/create",
            json!({"phone_number": "not a phone", "account_token": TOKEN})
        ),
        json!({"state": "invalid_phone_number"})
    );
    assert_eq!(
        call(
            "/api/sms/1/account/create",
            json!({"phone_number": "+32 470 12 34 56", "account_token": TOKEN})
        ),
        json!({"state": "success"})
    );
    eventually("the code at the gateway", || {
        peers.seen(|s| s.messages.len()) == 1
    })?;
    let message = peers.seen(|s| s.messages[0].clone());
    assert_eq!(message["to"], "+32470123456");
    let text = message["text"].as_str().unwrap_or_default();
    let code: String = text.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{text}");
    assert_eq!(available(&sidecar), 5.0, "the code is free");
    assert_eq!(
        call(
            "/api/sms/2/account/verify",
            json!({"code": "000000x", "account_token": TOKEN})
        ),
        json!({"state": "invalid_code"})
    );
    assert_eq!(
        call(
            "/api/sms/1/account/update_sender",
            json!({"sender_name": "ACME", "account_token": TOKEN})
        ),
        json!({"state": "unregistered_account"})
    );
    assert_eq!(
        call(
            "/api/sms/2/account/verify",
            json!({"code": code, "account_token": TOKEN})
        ),
        json!({"state": "success"})
    );
    assert_eq!(info()["registered"], "registered");
    assert_eq!(
        call(
            "/api/sms/1/account/update_sender",
            json!({"sender_name": "A_B", "account_token": TOKEN})
        ),
        json!({"state": "format_error"})
    );
    assert_eq!(
        call(
            "/api/sms/1/account/update_sender",
            json!({"sender_name": "ACME Shop", "account_token": TOKEN})
        ),
        json!({"state": "success"})
    );
    assert_eq!(
        call(
            "/api/sms/1/account/update_sender",
            json!({"sender_name": "Other", "account_token": TOKEN})
        ),
        json!({"state": "existing_sender"})
    );
    assert_eq!(info()["sender_name"], "ACME Shop");
    let result = send(
        &sidecar,
        &peers,
        json!([{"content": "Now", "numbers": [{"uuid": uuid(2), "number": "+32470000002"}]}]),
    );
    assert_eq!(states(&result), vec![(uuid(2), "success".to_owned())]);
    eventually("sent with the sender name", || {
        peers.seen(|s| s.messages.len()) == 2
    })?;
    assert_eq!(
        peers.seen(|s| s.messages[1]["from"].clone()),
        json!("ACME Shop")
    );
    Ok(())
}

/// Malformed and oversized calls: a JSON-RPC error in Odoo's shape, nothing written.
pub fn sms_bad_input_changes_nothing(backend: &Backend) -> Result<(), Failed> {
    let peers = Peers::start()?;
    let relay = format!("{}/relay", peers.base);
    let sidecar = Sidecar::start_with(backend, move |s| {
        s.sms.gateway = Some("relay".into());
        s.sms.gateways.insert(
            "relay".into(),
            serde_json::from_value(json!({"kind": "webhook", "url": relay, "secret": SECRET}))
                .expect("gateway settings"),
        );
        s.sms.prices = [("*".to_owned(), "1".to_owned())].into_iter().collect();
        s.sms.max_batch = 10;
    })?;
    let service = sidecar.service("sms", "key-sms", None);
    sidecar.grant(&service, TOKEN, 100);
    let good = |n: u32| json!({"uuid": uuid(n), "number": "+32470000001"});
    let bad_calls = [
        json!({"messages": "hello", "account_token": TOKEN}),
        json!({"messages": [{"content": "x", "numbers": [{"uuid": "NOT-HEX", "number": "+32470000001"}]}], "account_token": TOKEN}),
        json!({"messages": [{"content": "x", "numbers": [good(1), {"uuid": uuid(2), "number": 32470000001u64}]}], "account_token": TOKEN}),
        json!({"messages": [{"content": 5, "numbers": [good(1)]}], "account_token": TOKEN}),
        json!({"messages": [{"content": "x".repeat(1601), "numbers": [good(1)]}], "account_token": TOKEN}),
        json!({"messages": [{"content": "x", "numbers": (1..=11).map(good).collect::<Vec<_>>()}], "account_token": TOKEN}),
        json!({"messages": [{"content": "x", "numbers": [good(1)]}]}),
        json!({"messages": [{"content": "x", "numbers": [good(1)]}], "account_token": TOKEN, "webhook_url": "file:///etc/passwd"}),
        json!({"messages": [{"content": "x", "numbers": [good(1)], "extra": 1}], "account_token": TOKEN}),
        json!({"messages": [], "account_token": TOKEN, "surprise": true}),
    ];
    for params in bad_calls {
        let (name, message) = sidecar.call("/api/sms/3/send", params.clone()).error();
        assert!(name.ends_with("UserError"), "{params}: {name} {message}");
    }
    assert_eq!(
        sidecar
            .db
            .raw_i64("SELECT COUNT(*) AS v FROM sms_messages")?,
        0
    );
    assert_eq!(available(&sidecar), 100.0);
    Ok(())
}
