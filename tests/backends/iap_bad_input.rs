//! Bad input on every IAP route. Each request is refused the way Odoo's `iap_jsonrpc` can
//! read (HTTP 200, `error.data.name` and `error.data.message`), the message names what is
//! wrong, and nothing changes: balances, journals, open holds, alert settings and the
//! number of accounts are the same before and after.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use iap_sidecar::ledger::{
    AccountId, AccountState, AlertSettings, HoldId, HoldStatus, LedgerError, ServiceId,
};
use iap_sidecar::store::{AccountFilter, Store};
use libtest_mimic::Failed;
use serde_json::{Map, Value, json};

use crate::rpc::{INSUFFICIENT, Sidecar};
use crate::support::{Backend, Figures, HOUR};

const AUTHORIZE: &str = "/iap/1/authorize";
const CAPTURE: &str = "/iap/1/capture";
const CANCEL: &str = "/iap/1/cancel";
const BALANCE: &str = "/iap/1/balance";
const ACCOUNTS_INFORMATION: &str = "/iap/1/get-accounts-information";
const EMAIL_ALERTS: &str = "/iap/1/update-warning-email-alerts";
const SERVICES_TOKEN: &str = "/iap/services-token";
const WARNING_ODOO: &str = "/iap/update-warning-odoo";

const ROUTES: [&str; 8] = [
    AUTHORIZE,
    CAPTURE,
    CANCEL,
    BALANCE,
    ACCOUNTS_INFORMATION,
    EMAIL_ALERTS,
    SERVICES_TOKEN,
    WARNING_ODOO,
];

/// Client tokens with accounts (T1: services A and B; T2: service B) and one never seen.
const T1: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const T2: &str = "1f2e3d4c5b6a79889706b5c4d3e2f101";
const UNSEEN: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
const KEY_A: &str = "key-of-service-a";
const KEY_B: &str = "key-of-service-b";
const DB: &str = "bad-input-db";

/// What a parameter holds, to pick values of the wrong type.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Credits,
    Int,
    Bool,
    List,
}

/// Parameters of each route: name, kind, required.
fn params_of(route: &str) -> &'static [(&'static str, Kind, bool)] {
    use Kind::*;
    match route {
        AUTHORIZE => &[
            ("account_token", Text, true),
            ("credit", Credits, true),
            ("key", Text, true),
            ("description", Text, false),
            ("ttl", Int, false),
            ("dbuuid", Text, false),
        ],
        CAPTURE => &[
            ("token", Text, true),
            ("key", Text, true),
            ("credit_to_capture", Credits, false),
        ],
        CANCEL => &[("token", Text, true), ("key", Text, true)],
        BALANCE => &[
            ("dbuuid", Text, false),
            ("account_token", Text, true),
            ("service_name", Text, true),
        ],
        ACCOUNTS_INFORMATION => &[("iap_accounts", List, true), ("dbuuid", Text, false)],
        EMAIL_ALERTS => &[
            ("account_token", Text, true),
            ("warning_threshold", Credits, false),
            ("warning_emails", List, false),
        ],
        SERVICES_TOKEN => &[("dbuuid", Text, false), ("iap_accounts", List, true)],
        WARNING_ODOO => &[
            ("account_token", Text, true),
            ("dbuuid", Text, false),
            ("warn_me", Bool, false),
            ("warning_threshold", Credits, false),
            ("warning_email", Text, false),
        ],
        other => unreachable!("no route {other}"),
    }
}

/// Transactions in each state, made during setup.
struct Transactions {
    /// Open, service A.
    open: String,
    cancelled: String,
    captured: String,
    expired: String,
}

/// Parameters the route would accept (the case then spoils one thing).
fn valid(route: &str, tx: &Transactions) -> Map<String, Value> {
    let value = match route {
        AUTHORIZE => json!({"account_token": T1, "credit": 1, "key": KEY_A,
                            "description": "bad input", "ttl": 24, "dbuuid": DB}),
        CAPTURE => json!({"token": tx.open, "key": KEY_A, "credit_to_capture": 1}),
        CANCEL => json!({"token": tx.open, "key": KEY_A}),
        BALANCE => json!({"dbuuid": DB, "account_token": T1, "service_name": "svc_a"}),
        ACCOUNTS_INFORMATION => json!({"iap_accounts": [{"token": T1, "service": "svc_a"}],
                                       "dbuuid": DB}),
        EMAIL_ALERTS => json!({"account_token": T1, "warning_threshold": 3.0,
                               "warning_emails": [{"email": "x@example.com",
                                                   "lang_code": "en_US"}]}),
        SERVICES_TOKEN => json!({"dbuuid": DB, "iap_accounts": [T1, T2]}),
        WARNING_ODOO => json!({"account_token": T1, "dbuuid": DB, "warn_me": true,
                               "warning_threshold": 3.0, "warning_email": "ops@example.com"}),
        other => unreachable!("no route {other}"),
    };
    valid_map(value)
}

/// How a case reaches the server.
enum Request {
    /// These params in Odoo's envelope (the id must come back).
    Params(Map<String, Value>),
    /// This whole JSON request.
    Whole(Value),
    /// These bytes as the body.
    Raw(Vec<u8>),
    /// A GET without body.
    Get,
}

struct Case {
    label: String,
    path: &'static str,
    request: Request,
    /// Part of `error.data.message` that says what is wrong.
    expect: String,
}

fn envelope(params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": "bad-input"})
}

fn long_token() -> Value {
    json!("t".repeat(200))
}

/// The table of cases, filled route by route.
struct Cases<'a> {
    tx: &'a Transactions,
    list: Vec<Case>,
}

impl Cases<'_> {
    fn add(
        &mut self,
        path: &'static str,
        label: impl Into<String>,
        request: Request,
        expect: &str,
    ) {
        self.list.push(Case {
            label: label.into(),
            path,
            request,
            expect: expect.to_owned(),
        });
    }

    /// `valid` params of `path` with `key` set to `value` (removed when `None`).
    fn with(&self, path: &str, key: &str, value: Option<Value>) -> Request {
        let mut params = valid(path, self.tx);
        match value {
            Some(v) => params.insert(key.to_owned(), v),
            None => params.remove(key),
        };
        Request::Params(params)
    }

    /// Valid params but `key` = `value`.
    fn spoil(&mut self, path: &'static str, label: &str, key: &str, value: Value, expect: &str) {
        let request = self.with(path, key, Some(value));
        self.add(path, label, request, expect);
    }

    /// What every route must refuse alike: the body and the envelope.
    fn envelope(&mut self, path: &'static str) {
        let good = Value::Object(valid(path, self.tx));
        let mut big = valid(path, self.tx);
        big.insert("padding".into(), json!("x".repeat(2 * 1024 * 1024)));
        let raw = |text: &str| Request::Raw(text.as_bytes().to_vec());
        let whole = Request::Whole;
        let not_json = "not valid JSON";
        let not_object = "must be a JSON-RPC request object";
        let no_params = "missing \"params\"";
        let params_kind = "\"params\" must be an object";
        self.add(
            path,
            "non-JSON body",
            raw("account_token=abc&credit=1"),
            not_json,
        );
        self.add(path, "empty body", raw(""), not_json);
        let batch = json!([envelope(good.clone())]);
        self.add(path, "JSON array body", whole(batch), not_object);
        self.add(path, "JSON string body", whole(json!("call")), not_object);
        let bare = json!({"jsonrpc": "2.0", "method": "call", "id": 7});
        self.add(path, "missing params", whole(bare), no_params);
        self.add(path, "null params", whole(envelope(Value::Null)), no_params);
        let listed = envelope(json!([good.clone()]));
        self.add(path, "params a list", whole(listed), params_kind);
        self.add(
            path,
            "params a string",
            whole(envelope(json!("x"))),
            params_kind,
        );
        let old = json!({"jsonrpc": "1.0", "method": "call", "params": good, "id": 7});
        self.add(
            path,
            "jsonrpc 1.0",
            whole(old),
            "\"jsonrpc\" must be \"2.0\"",
        );
        let extra = "unknown parameter(s): bogus_param";
        self.spoil(path, "extra unknown param", "bogus_param", json!(1), extra);
        let big = whole(envelope(Value::Object(big)));
        self.add(path, "2 MB body", big, "larger than 262144 bytes");
        self.add(path, "GET", Request::Get, "takes a JSON-RPC POST request");
    }

    /// A missing, null or wrongly typed value for each parameter.
    fn types(&mut self, path: &'static str) {
        for &(name, kind, required) in params_of(path) {
            if required {
                let missing = format!("missing parameter \"{name}\"");
                let request = self.with(path, name, None);
                self.add(path, format!("{name} missing"), request, &missing);
                let null = format!("{name} null");
                self.spoil(path, &null, name, Value::Null, &missing);
            }
            let wrong: [(Value, &str); 2] = match kind {
                Kind::Text => [(json!(42), "a string"), (json!(["x"]), "a string")],
                Kind::Credits => [(json!("12"), "a number"), (json!(true), "a number")],
                Kind::Int => [
                    (json!("24"), "a whole number"),
                    (json!({}), "a whole number"),
                ],
                Kind::Bool => [(json!("yes"), "true or false"), (json!(1), "true or false")],
                Kind::List => [(json!("tok"), "a list"), (json!({"a": 1}), "a list")],
            };
            for (value, kind) in wrong {
                let label = format!("{name} = {value}");
                let expect = format!("\"{name}\" must be {kind}");
                self.spoil(path, &label, name, value, &expect);
            }
        }
    }

    /// Amounts no route may accept, for the credits parameter `name`.
    fn amounts(&mut self, path: &'static str, name: &str) {
        let negative = format!("\"{name}\": amount must not be negative");
        let too_big = format!("\"{name}\": amount exceeds the maximum");
        let not_number = format!("\"{name}\" must be a number");
        let values = [
            ("-5", json!(-5), &negative),
            ("-0.5", json!(-0.5), &negative),
            ("\"NaN\"", json!("NaN"), &not_number),
            ("1e300", json!(1e300), &too_big),
            ("10^12 + 1", json!(1_000_000_000_001_i64), &too_big),
            ("10^12 + 0.5", json!(1_000_000_000_000.5), &too_big),
            ("2^64 - 1", json!(u64::MAX), &too_big),
        ];
        for (label, value, expect) in values {
            self.spoil(path, &format!("{name} {label}"), name, value, expect);
        }
        // Not JSON at all, though Python's json.dumps writes NaN and Infinity.
        let mut params = valid(path, self.tx);
        params.insert(name.to_owned(), json!("@"));
        let text = serde_json::to_string(&envelope(Value::Object(params))).expect("json");
        for literal in ["NaN", "Infinity", "-Infinity", "1e400"] {
            let body = text.replacen("\"@\"", literal, 1).into_bytes();
            let label = format!("{name} bare {literal}");
            self.add(path, label, Request::Raw(body), "not valid JSON");
        }
    }

    /// Provider calls: hold lifetimes, keys, transactions in the wrong state.
    fn provider(&mut self) {
        let tx = self.tx;
        self.amounts(AUTHORIZE, "credit");
        self.amounts(CAPTURE, "credit_to_capture");
        let ttl = "ttl must be at least 1 hour, not";
        self.spoil(AUTHORIZE, "ttl 0", "ttl", json!(0), &format!("{ttl} 0"));
        self.spoil(AUTHORIZE, "ttl -3", "ttl", json!(-3), &format!("{ttl} -3"));
        let fraction = "\"ttl\" must be a whole number, not 1.5";
        self.spoil(AUTHORIZE, "ttl 1.5", "ttl", json!(1.5), fraction);
        let too_long = "longer than 128 characters";
        let token = "account_token";
        self.spoil(
            AUTHORIZE,
            "token of 200 chars",
            token,
            long_token(),
            too_long,
        );
        let empty = "\"account_token\" must not be empty";
        self.spoil(AUTHORIZE, "blank token", token, json!("  "), empty);
        let suffix_only = "account_token must be 1-128 characters";
        self.spoil(
            AUTHORIZE,
            "token only +disabled",
            token,
            json!("+disabled"),
            suffix_only,
        );
        let long = json!("d".repeat(1001));
        let label = "description of 1001 chars";
        self.spoil(
            AUTHORIZE,
            label,
            "description",
            long,
            "longer than 1000 characters",
        );

        let invalid_key = "invalid service key";
        let unknown_tx = "unknown transaction token";
        for path in [AUTHORIZE, CAPTURE, CANCEL] {
            self.spoil(path, "wrong key", "key", json!("nope"), invalid_key);
        }
        for path in [CAPTURE, CANCEL] {
            let unknown = json!("0".repeat(40));
            self.spoil(path, "unknown transaction", "token", unknown, unknown_tx);
            let label = "transaction of 200 chars";
            self.spoil(path, label, "token", long_token(), unknown_tx);
            // A key of another service must not reach the transaction, nor learn it exists.
            let label = "service A's transaction with service B's key";
            self.spoil(path, label, "key", json!(KEY_B), unknown_tx);
        }
        let label = "capture of a cancelled transaction";
        let expect = "the transaction is already cancelled";
        self.spoil(CAPTURE, label, "token", json!(tx.cancelled), expect);
        let label = "capture after the hold expired";
        let expect = "the transaction expired before it was captured";
        self.spoil(CAPTURE, label, "token", json!(tx.expired), expect);
        let captured = "the transaction is already captured";
        let label = "cancel of a captured transaction";
        self.spoil(CANCEL, label, "token", json!(tx.captured), captured);
        let again = json!({"token": tx.captured, "key": KEY_A, "credit_to_capture": 0.5});
        let label = "capture of a captured transaction with another amount";
        self.add(CAPTURE, label, Request::Params(valid_map(again)), captured);
    }

    /// Client calls: tokens, batches, alert settings.
    fn client(&mut self) {
        self.amounts(EMAIL_ALERTS, "warning_threshold");
        self.amounts(WARNING_ODOO, "warning_threshold");
        let too_long = "longer than 128 characters";
        let bad_token = "account_token must be 1-128 characters";
        let token = "account_token";
        for path in [BALANCE, EMAIL_ALERTS, WARNING_ODOO] {
            self.spoil(path, "token of 200 chars", token, long_token(), too_long);
        }
        for path in [EMAIL_ALERTS, WARNING_ODOO] {
            let unknown = "unknown account token";
            self.spoil(path, "unknown token", token, json!(UNSEEN), unknown);
        }
        let name = json!("s".repeat(65));
        let sixty_four = "longer than 64 characters";
        self.spoil(
            BALANCE,
            "service name of 65 chars",
            "service_name",
            name,
            sixty_four,
        );
        let db = json!("d".repeat(65));
        self.spoil(BALANCE, "dbuuid of 65 chars", "dbuuid", db, sixty_four);

        let accounts = "iap_accounts";
        let item = |token: Value| json!({"token": token, "service": "svc_a"});
        let batches = [
            ("token of 200 chars", json!([item(long_token())]), bad_token),
            // Odoo batches every account it reads: a bad item must not let the good ones
            // before it register anything.
            (
                "batch whose second token has 200 chars",
                json!([item(json!(UNSEEN)), item(long_token())]),
                bad_token,
            ),
            (
                "batch whose second item is not an object",
                json!([item(json!(UNSEEN)), 42]),
                "items of \"iap_accounts\" must be objects",
            ),
            (
                "item not an object",
                json!([T1]),
                "items of \"iap_accounts\" must be objects",
            ),
            (
                "item token a number",
                json!([item(json!(7))]),
                "needs \"token\" as a non-empty string",
            ),
            (
                "item without service",
                json!([{"token": T1}]),
                "needs \"service\" as a non-empty string",
            ),
            (
                "item with an unknown key",
                json!([{"token": T1, "service": "svc_a", "x": 1}]),
                "unknown key \"x\"",
            ),
            (
                "1001 items",
                json!(vec![item(json!(T1)); 1001]),
                "more than 1000 items",
            ),
        ];
        for (label, value, expect) in batches {
            self.spoil(ACCOUNTS_INFORMATION, label, accounts, value, expect);
        }
        let tokens = [
            ("token of 200 chars", json!([T1, long_token()]), bad_token),
            (
                "item a number",
                json!([T1, 5]),
                "must be account tokens (strings)",
            ),
        ];
        for (label, value, expect) in tokens {
            self.spoil(SERVICES_TOKEN, label, accounts, value, expect);
        }

        let recipients = [
            (
                "bad e-mail",
                json!([{"email": "not-an-email", "lang_code": "en_US"}]),
                "\"not-an-email\" is not an e-mail address",
            ),
            (
                "e-mail without a dot in the domain",
                json!([{"email": "ops@localhost"}]),
                "\"ops@localhost\" is not an e-mail address",
            ),
            (
                "bad language code",
                json!([{"email": "x@example.com", "lang_code": "en US!"}]),
                "\"en US!\" is not a language code",
            ),
            (
                "recipient not an object",
                json!(["x@example.com"]),
                "items of \"warning_emails\" must be {email, lang_code} objects",
            ),
            (
                "recipient without e-mail",
                json!([{"lang_code": "en_US"}]),
                "needs \"email\"",
            ),
            (
                "51 recipients",
                json!(vec![json!({"email": "x@example.com"}); 51]),
                "more than 50 items",
            ),
        ];
        for (label, value, expect) in recipients {
            self.spoil(EMAIL_ALERTS, label, "warning_emails", value, expect);
        }
        let emails = json!("ops@example.com,not-an-email");
        let expect = "\"not-an-email\" is not an e-mail address";
        self.spoil(WARNING_ODOO, "bad e-mail", "warning_email", emails, expect);
    }
}

fn valid_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => unreachable!("params must be an object: {other}"),
    }
}

/// Everything a refused request must leave alone, for one account.
#[derive(Debug, PartialEq)]
struct AccountSnapshot {
    id: AccountId,
    service_id: ServiceId,
    dbuuid: Option<String>,
    state: AccountState,
    disabled: bool,
    figures: Figures,
    journal: usize,
    /// Open holds: id, units, status, expiry.
    holds: Vec<(HoldId, i64, HoldStatus, i64)>,
    alerts: AlertSettings,
}

fn snapshot(store: &Store) -> Result<Vec<AccountSnapshot>, LedgerError> {
    let accounts = store.list_accounts(&AccountFilter {
        limit: 1_000_000,
        ..AccountFilter::default()
    })?;
    accounts
        .into_iter()
        .map(|a| {
            let holds = store
                .open_holds(a.id)?
                .into_iter()
                .map(|h| (h.id, h.amount.units(), h.status, h.expires_at.micros()))
                .collect();
            Ok(AccountSnapshot {
                id: a.id,
                service_id: a.service_id,
                figures: store.balance(a.id)?.into(),
                journal: store.journal(a.id, None, 1000)?.len(),
                holds,
                dbuuid: a.dbuuid,
                state: a.state,
                disabled: a.disabled,
                alerts: a.alerts,
            })
        })
        .collect()
}

/// A GET with a raw HTTP/1.1 request: (status, JSON body).
fn get(base: &str, path: &str) -> Result<(u16, Value), String> {
    let host = base
        .strip_prefix("http://")
        .ok_or("the base URL is not http://")?;
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connecting: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("sending: {e}"))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("reading: {e}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let json = serde_json::from_str(body).map_err(|e| format!("body not JSON ({e}): {body:?}"))?;
    Ok((status, json))
}

/// Sends a case: (status, answer body, id the answer must echo).
fn send(s: &Sidecar, case: &Case) -> Result<(u16, Value, Option<Value>), String> {
    Ok(match &case.request {
        Request::Params(params) => {
            let id = json!(format!("bad-{}", iap_sidecar::ledger::token::random_hex(6)));
            let request = json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": id});
            let a = s.post(case.path, &request);
            (a.status, a.body, Some(id))
        }
        Request::Whole(request) => {
            let a = s.post(case.path, request);
            (a.status, a.body, None)
        }
        Request::Raw(bytes) => {
            let a = s.post_bytes(case.path, bytes.clone());
            (a.status, a.body, None)
        }
        Request::Get => {
            let (status, body) = get(&s.base, case.path)?;
            (status, body, None)
        }
    })
}

/// What is wrong with the answer to `case`, if anything.
fn judge(case: &Case, status: u16, body: &Value, id: Option<&Value>) -> Option<String> {
    let data = &body["error"]["data"];
    let name = data["name"].as_str().unwrap_or_default();
    let message = data["message"].as_str().unwrap_or_default();
    let problem = if status != 200 {
        format!("HTTP {status}; Odoo needs 200")
    } else if body.get("result").is_some() {
        "accepted".to_owned()
    } else if name.is_empty() || message.is_empty() {
        "no error.data.name and error.data.message strings".to_owned()
    } else if name == INSUFFICIENT {
        "answered InsufficientCreditError to bad input".to_owned()
    } else if !message.contains(&case.expect) {
        format!("message does not say {:?}", case.expect)
    } else if id.is_some_and(|id| body["id"] != *id) {
        "id not echoed".to_owned()
    } else {
        return None;
    };
    let shown: String = body.to_string().chars().take(400).collect();
    Some(format!("{} {}: {problem}: {shown}", case.path, case.label))
}

/// A transaction token from an authorize answer.
fn authorize(s: &Sidecar, key: &str, token: &str, credit: f64, ttl: i64) -> Result<String, String> {
    let answer = s.call(
        AUTHORIZE,
        json!({"account_token": token, "credit": credit, "key": key, "ttl": ttl,
               "description": "setup"}),
    );
    answer
        .result()
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("authorize answered {}", answer.body))
}

/// Accounts with credits, alerts and one transaction in each state; the clock is then past
/// the short hold's expiry, and expiries are settled so nothing moves during the cases.
fn setup(s: &Sidecar) -> Result<Transactions, Failed> {
    let a = s.service("svc_a", KEY_A, None);
    let b = s.service("svc_b", KEY_B, None);
    s.grant(&a, T1, 50);
    s.grant(&b, T1, 10);
    s.grant(&b, T2, 20);
    s.call(
        EMAIL_ALERTS,
        json!({"account_token": T1, "warning_threshold": 5.0,
               "warning_emails": [{"email": "ops@example.com", "lang_code": "fr_FR"}]}),
    )
    .result();
    s.call(
        WARNING_ODOO,
        json!({"account_token": T2, "dbuuid": DB, "warn_me": true, "warning_threshold": 2.0,
               "warning_email": "b@example.com"}),
    )
    .result();
    let open = authorize(s, KEY_A, T1, 2.0, 4320)?;
    authorize(s, KEY_B, T2, 1.5, 4320)?;
    let cancelled = authorize(s, KEY_A, T1, 1.0, 4320)?;
    s.call(CANCEL, json!({"token": cancelled, "key": KEY_A}))
        .result();
    let captured = authorize(s, KEY_A, T1, 1.0, 4320)?;
    s.call(
        CAPTURE,
        json!({"token": captured, "key": KEY_A, "credit_to_capture": 1}),
    )
    .result();
    let expired = authorize(s, KEY_A, T1, 3.0, 1)?;
    s.db.advance(2 * HOUR);
    for account in s.db.store.list_accounts(&AccountFilter {
        limit: 1000,
        ..AccountFilter::default()
    })? {
        s.db.store.settle(account.id)?;
    }
    Ok(Transactions {
        open,
        cancelled,
        captured,
        expired,
    })
}

pub fn iap_bad_input_changes_nothing(backend: &Backend) -> Result<(), Failed> {
    let s = Sidecar::start(backend)?;
    let tx = setup(&s)?;
    // Something to protect: three accounts, open holds, alert recipients.
    let start = snapshot(&s.db.store)?;
    assert_eq!(start.len(), 3, "accounts after setup: {start:?}");
    assert!(start.iter().any(|a| !a.holds.is_empty()), "{start:?}");
    assert!(
        start.iter().any(|a| !a.alerts.recipients.is_empty()),
        "{start:?}"
    );

    let mut table = Cases {
        tx: &tx,
        list: Vec::new(),
    };
    for route in ROUTES {
        table.envelope(route);
        table.types(route);
    }
    table.provider();
    table.client();
    let cases = table.list;

    let mut problems = Vec::new();
    for case in &cases {
        let before = snapshot(&s.db.store)?;
        let (status, body, id) = send(&s, case)?;
        problems.extend(judge(case, status, &body, id.as_ref()));
        let after = snapshot(&s.db.store)?;
        if before != after {
            problems.push(format!(
                "{} {}: changed the store:\n    before {before:?}\n    after  {after:?}",
                case.path, case.label
            ));
        }
    }
    eprintln!("{} bad requests refused", cases.len());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} bad requests mishandled:\n  {}",
            problems.len(),
            cases.len(),
            problems.join("\n  ")
        )
        .into())
    }
}
