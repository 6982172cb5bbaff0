//! Property test of the JSON-RPC parameter parsing over real HTTP: random `params` (the
//! keys the routes know, mixed with others; every JSON type, odd numbers, long and empty
//! strings, nesting) on every protocol route. The server never fails: each answer is a
//! JSON-RPC envelope with exactly one of `result` or `error` (an error in Odoo's shape,
//! with a name), and the ledger's invariants hold afterwards. Bounded by a case count so
//! it runs in every `cargo test`.

use libtest_mimic::Failed;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use iap_sidecar::store::AccountFilter;

use crate::rpc::Sidecar;
use crate::support::{Backend, audit_clean};

/// Protocol routes (src/protocol/mod.rs).
const ROUTES: &[&str] = &[
    "/iap/1/authorize",
    "/iap/1/capture",
    "/iap/1/cancel",
    "/iap/1/balance",
    "/iap/1/get-accounts-information",
    "/iap/1/update-warning-email-alerts",
    "/iap/services-token",
    "/iap/update-warning-odoo",
];

/// Every parameter name some route accepts, and a few it does not.
const KEYS: &[&str] = &[
    "account_token",
    "dbuuid",
    "service_name",
    "iap_accounts",
    "key",
    "token",
    "credit",
    "credit_to_capture",
    "description",
    "ttl",
    "warning_threshold",
    "warning_emails",
    "warn_me",
    "warning_email",
    "email",
    "lang_code",
    "unknown",
];

/// Cases per backend (each is one HTTP request).
const CASES: u32 = 600;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(0.0001),
            Just(0.00005),
            Just(1e12),
            Just(1e13),
            Just(-1.0),
            Just(1.5),
            Just(4320.0),
        ]
        .prop_map(Value::from),
        // The values the fixture knows, so some calls get past the parsing.
        prop_oneof![
            Just("sms"),
            Just("tok-fuzz"),
            Just("key-fuzz"),
            Just("db-fuzz"),
            Just("ops@example.org"),
            Just("fr_FR"),
            Just(""),
            Just("   "),
            Just("tok-fuzz+disabled"),
        ]
        .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[a-z0-9]{2000,2100}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => ".{0,12}"],
            value(),
        ),
        0..7,
    )
    .prop_map(|kv| kv.into_iter().collect())
}

pub fn random_params_never_break_the_protocol(backend: &Backend) -> Result<(), Failed> {
    let sc = Sidecar::start(backend)?;
    let sms = sc.service("sms", "key-fuzz", Some((5, 30)));
    sc.grant(&sms, "tok-fuzz", 50);

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::sample::select(ROUTES), params());
    runner
        .run(&strategy, |(route, params)| {
            let answer = sc.post(
                route,
                &json!({"jsonrpc": "2.0", "method": "call", "id": 7, "params": params}),
            );
            let body = &answer.body;
            prop_assert_eq!(answer.status, 200, "{} {}", route, body);
            prop_assert_eq!(&body["id"], &json!(7));
            let has_result = body.get("result").is_some();
            let has_error = body.get("error").is_some();
            prop_assert!(has_result != has_error, "{} {}", route, body);
            if has_error {
                let name = body["error"]["data"]["name"].as_str().unwrap_or_default();
                // An exception Odoo's `iap_jsonrpc` knows how to raise.
                prop_assert!(
                    name.starts_with("odoo.") && body["error"]["data"]["message"].is_string(),
                    "{} {}",
                    route,
                    body
                );
            }
            Ok::<(), TestCaseError>(())
        })
        .map_err(|e| format!("{e}"))?;

    // Whatever was accepted left the ledger consistent.
    let accounts = sc
        .db
        .store
        .list_accounts(&AccountFilter {
            service: None,
            dbuuid: None,
            limit: 10_000,
            offset: 0,
        })
        .map_err(|e| e.to_string())?;
    for account in accounts {
        audit_clean(&sc.db.store, account.id)?;
    }
    Ok(())
}
