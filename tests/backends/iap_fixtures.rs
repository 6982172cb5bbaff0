//! Replays the requests real Odoo 17, 18 and 19 servers sent to `iap.endpoint`
//! (`tests/fixtures/odoo{17,18,19}-iap-requests.jsonl`) byte for byte against a sidecar,
//! and checks each answer has the shape that version's client code reads.
//!
//! Only the transaction token of a capture or cancel is rewritten: the recorded one came
//! from another server, so it becomes the token this sidecar gave for the most recent
//! authorize not yet captured or cancelled.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{Credits, Service};
use libtest_mimic::Failed;
use serde_json::{Map, Value, json};

use crate::rpc::{Answer, Sidecar};
use crate::support::Backend;

/// The routes Odoo sends to `iap.endpoint`; other recorded paths went to other hosts.
const IAP_ROUTES: [&str; 8] = [
    "/iap/1/authorize",
    "/iap/1/capture",
    "/iap/1/cancel",
    "/iap/1/balance",
    "/iap/1/get-accounts-information",
    "/iap/1/update-warning-email-alerts",
    "/iap/services-token",
    "/iap/update-warning-odoo",
];

/// The provider key the recorded authorize/capture/cancel calls carry.
const PROVIDER_KEY: &str = "my-service-key";
const PROVIDER: &str = "my_service";
/// Credits granted to each provider account before the replay.
const GRANT: i64 = 100;

/// The keys of Odoo 17's `iap.account.info`: `/iap/services-token` items may hold no other.
const INFO_KEYS: [&str; 9] = [
    "account_token",
    "balance",
    "account_uuid_hashed",
    "service_name",
    "description",
    "warn_me",
    "warning_threshold",
    "warning_email",
    "unit_name",
];

const REGISTRATION_STATES: [&str; 3] = ["registered", "unregistered", "banned"];

/// `tests/fixtures` of the crate: the captured requests are test data the repository
/// carries, so a clone with nothing beside it runs this test.
fn fixtures_dir() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "the Odoo IAP fixtures are missing: expected the directory {} \
             with odoo17/18/19-iap-requests.jsonl",
            dir.display()
        ))
    }
}

/// One recorded request.
struct Record {
    line: usize,
    path: String,
    /// The request exactly as Odoo serialised it.
    raw_body: String,
    body: Value,
}

impl Record {
    fn params(&self) -> &Value {
        &self.body["params"]
    }

    fn param_str(&self, key: &str) -> Option<&str> {
        self.params()[key].as_str()
    }
}

fn load(file: &str) -> Result<Vec<Record>, String> {
    let path = fixtures_dir()?.join(file);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{file}:{}", index + 1);
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{at}: {e}"))?;
        let path = value["path"]
            .as_str()
            .ok_or_else(|| format!("{at}: no \"path\""))?
            .to_owned();
        if !IAP_ROUTES.contains(&path.as_str()) {
            continue;
        }
        let raw_body = raw_member(line, "body")
            .ok_or_else(|| format!("{at}: no \"body\" member"))?
            .to_owned();
        let body: Value = serde_json::from_str(&raw_body)
            .map_err(|e| format!("{at}: the body text is not JSON ({e})"))?;
        if body != value["body"] {
            return Err(format!("{at}: the body text was not cut out exactly"));
        }
        records.push(Record {
            line: index + 1,
            path,
            raw_body,
            body,
        });
    }
    Ok(records)
}

/// The text of member `key` of the JSON object `text`, exactly as written.
fn raw_member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let skip_ws = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let open = i;
                i += 1;
                while *b.get(i)? != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && start.is_none() {
                    let after = skip_ws(i + 1);
                    let name: String = serde_json::from_str(&text[open..=i]).ok()?;
                    if b.get(after) == Some(&b':') && name == key {
                        start = Some(skip_ws(after + 1));
                        i = start?;
                        continue;
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' | b',' if depth == 1 && start.is_some() => {
                return Some(text[start?..i].trim_end());
            }
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Low-credit settings a client has written for a token, as later reads must report them.
#[derive(Default)]
struct Alerts {
    threshold: Option<f64>,
    warn_me: Option<bool>,
    /// Odoo 17's comma-separated `warning_email`.
    email: Option<String>,
}

/// A hold this sidecar granted: its transaction token and amount in units.
struct Open {
    transaction: String,
    account_token: String,
    units: i64,
}

/// Replay state of one fixture file on one sidecar.
struct Replay<'a> {
    s: &'a Sidecar,
    version: &'a str,
    provider: Service,
    /// Authorizes not yet captured or cancelled, oldest first.
    open: Vec<Open>,
    /// Expected (balance, reserved) in units of each provider account.
    model: HashMap<String, (i64, i64)>,
    alerts: HashMap<String, Alerts>,
    /// Tokens whose balance was read (registered before the replay).
    balance_read: BTreeSet<String>,
    problems: Vec<String>,
}

fn units(v: &Value) -> Result<i64, String> {
    Credits::from_json(v)
        .map(Credits::units)
        .map_err(|e| format!("{v} is not an amount: {e}"))
}

fn token(raw: &str) -> AccountToken {
    AccountToken::from_raw(raw).expect("a valid account token")
}

impl Replay<'_> {
    fn check(&mut self, ok: bool, at: &str, what: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(format!("{at}: {}", what()));
        }
    }

    /// Available credits of `raw`'s account for service `name`, as the store has them.
    fn available(&self, name: &str, raw: &str) -> Result<Option<f64>, String> {
        let store = &self.s.db.store;
        let service = store.service_by_name(name).map_err(|e| e.to_string())?;
        let Some(account) = store
            .find_account(service.id, &token(raw))
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let figures = store.balance(account.id).map_err(|e| e.to_string())?;
        Ok(Some(figures.available.to_f64()))
    }

    /// Compares the store's figures of every provider account with the model.
    fn check_provider_model(&mut self, at: &str) -> Result<(), String> {
        let store = &self.s.db.store;
        let mut found = Vec::new();
        for (raw, &(balance, reserved)) in &self.model {
            let account = store
                .find_account(self.provider.id, &token(raw))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{at}: provider account {raw} vanished"))?;
            let b = store.balance(account.id).map_err(|e| e.to_string())?;
            if (b.balance.units(), b.reserved.units()) != (balance, reserved) {
                found.push(format!(
                    "{at}: provider account {raw}: balance/reserved {}/{} units, expected \
                     {balance}/{reserved}",
                    b.balance.units(),
                    b.reserved.units()
                ));
            }
        }
        self.problems.extend(found);
        Ok(())
    }

    /// Posts one record (with `raw_body` possibly rewritten) and checks the envelope.
    fn post(&mut self, at: &str, record: &Record, raw_body: String) -> Answer {
        let answer = self.s.post_bytes(&record.path, raw_body.into_bytes());
        self.check(answer.status == 200, at, || {
            format!("HTTP {}, Odoo needs 200", answer.status)
        });
        self.check(answer.body["jsonrpc"] == "2.0", at, || {
            format!("no \"jsonrpc\": \"2.0\" in {}", answer.body)
        });
        self.check(answer.body["id"] == record.body["id"], at, || {
            format!("id {} not echoed: {}", record.body["id"], answer.body)
        });
        answer
    }

    fn replay(&mut self, record: &Record) -> Result<(), String> {
        let at = format!("odoo{} line {} {}", self.version, record.line, record.path);
        let mut raw_body = record.raw_body.clone();
        let mut closing = None;
        if matches!(record.path.as_str(), "/iap/1/capture" | "/iap/1/cancel") {
            let foreign = record
                .param_str("token")
                .ok_or_else(|| format!("{at}: no transaction token"))?;
            let open = self
                .open
                .pop()
                .ok_or_else(|| format!("{at}: no authorize left to {}", record.path))?;
            let quoted = format!("\"{foreign}\"");
            if raw_body.matches(&quoted).count() != 1 {
                return Err(format!(
                    "{at}: the transaction token is not unique in the body"
                ));
            }
            raw_body = raw_body.replacen(&quoted, &format!("\"{}\"", open.transaction), 1);
            let mut expected = record.body.clone();
            expected["params"]["token"] = json!(open.transaction);
            if serde_json::from_str::<Value>(&raw_body).ok() != Some(expected) {
                return Err(format!(
                    "{at}: rewriting the transaction token changed more"
                ));
            }
            closing = Some(open);
        }

        let answer = self.post(&at, record, raw_body);
        if let Some(error) = answer.body.get("error") {
            self.problems
                .push(format!("{at}: refused a request Odoo really sent: {error}"));
            return Ok(());
        }
        let Some(result) = answer.body.get("result") else {
            self.problems
                .push(format!("{at}: neither result nor error"));
            return Ok(());
        };
        match record.path.as_str() {
            "/iap/1/balance" => self.balance(&at, record, result)?,
            "/iap/1/get-accounts-information" => self.accounts_information(&at, record, result)?,
            "/iap/1/update-warning-email-alerts" => self.email_alerts(&at, record)?,
            "/iap/services-token" => self.services_token(&at, record, result)?,
            "/iap/update-warning-odoo" => self.warning_odoo(&at, record)?,
            "/iap/1/authorize" => self.authorize(&at, record, result)?,
            "/iap/1/capture" | "/iap/1/cancel" => {
                let open = closing.expect("set for capture and cancel");
                self.close(&at, record, result, open)?;
            }
            other => unreachable!("{other} is not replayed"),
        }
        Ok(())
    }

    /// 17–19 `get_credits`: a number, returned unchanged.
    fn balance(&mut self, at: &str, record: &Record, result: &Value) -> Result<(), String> {
        self.check(result.is_number(), at, || {
            format!("balance must be a JSON number, got {result}")
        });
        let raw = record.param_str("account_token").unwrap_or_default();
        let service = record.param_str("service_name").unwrap_or_default();
        let stored = self.available(service, raw)?;
        self.check(stored == result.as_f64(), at, || {
            format!("balance {result}, the store has {stored:?}")
        });
        self.balance_read.insert(raw.to_owned());
        Ok(())
    }

    /// 18/19 `web_read`: an object keyed by exactly the tokens sent.
    fn accounts_information(
        &mut self,
        at: &str,
        record: &Record,
        result: &Value,
    ) -> Result<(), String> {
        let sent: Vec<(String, String)> = record.params()["iap_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let field = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                (field("token"), field("service"))
            })
            .collect();
        let Some(object) = result.as_object() else {
            self.problems.push(format!(
                "{at}: expected an object keyed by token, got {result}"
            ));
            return Ok(());
        };
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        let tokens: BTreeSet<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
        self.check(keys == tokens, at, || {
            format!("keys {keys:?}, but the tokens sent were {tokens:?}")
        });
        for (raw, service) in &sent {
            let Some(info) = object.get(raw) else {
                continue;
            };
            let mut found = Vec::new();
            if !info["balance"].is_number() {
                found.push(format!("balance of {raw} is not a number: {info}"));
            }
            if !info["warning_threshold"].is_number() {
                found.push(format!(
                    "warning_threshold of {raw} is not a number: {info}"
                ));
            }
            if !info["registered"]
                .as_str()
                .is_some_and(|s| REGISTRATION_STATES.contains(&s))
            {
                found.push(format!(
                    "registered of {raw} is not one of {REGISTRATION_STATES:?}: {info}"
                ));
            }
            let stored = self.available(service, raw)?;
            if stored.is_some() && stored != info["balance"].as_f64() {
                found.push(format!(
                    "balance of {raw}: {info}, the store has {stored:?}"
                ));
            }
            // 19's form save: the threshold just written must come back, or the client
            // overwrites the user's value with a stale one.
            if let Some(x) = self.alerts.get(raw).and_then(|a| a.threshold)
                && info["warning_threshold"].as_f64() != Some(x)
            {
                found.push(format!(
                    "{raw}: warning_threshold {} after the client saved {x}",
                    info["warning_threshold"]
                ));
            }
            self.problems
                .extend(found.into_iter().map(|p| format!("{at}: {p}")));
        }
        Ok(())
    }

    /// Checks what the store holds for `raw` after an alert update.
    fn stored_alerts(
        &mut self,
        at: &str,
        raw: &str,
        emails: Option<Vec<(String, Option<String>)>>,
    ) -> Result<(), String> {
        let accounts = self
            .s
            .db
            .store
            .accounts_by_token(&token(raw))
            .map_err(|e| e.to_string())?;
        self.check(!accounts.is_empty(), at, || format!("no account for {raw}"));
        let expected = self.alerts.entry(raw.to_owned()).or_default();
        let mut found = Vec::new();
        for (account, service) in accounts {
            let alerts = &account.alerts;
            let name = &service.technical_name;
            if let Some(x) = expected.threshold
                && alerts.threshold.to_f64() != x
            {
                found.push(format!(
                    "{name}: stored threshold {}, sent {x}",
                    alerts.threshold
                ));
            }
            if let Some(w) = expected.warn_me
                && alerts.warn_me != w
            {
                found.push(format!(
                    "{name}: stored warn_me {}, sent {w}",
                    alerts.warn_me
                ));
            }
            if let Some(emails) = &emails {
                let stored: Vec<(String, Option<String>)> = alerts
                    .recipients
                    .iter()
                    .map(|r| (r.email.clone(), r.lang_code.clone()))
                    .collect();
                if &stored != emails {
                    found.push(format!(
                        "{name}: stored recipients {stored:?}, sent {emails:?}"
                    ));
                }
            }
        }
        self.problems
            .extend(found.into_iter().map(|p| format!("{at}: {p}")));
        Ok(())
    }

    /// 18/19 `write`: any result; the settings must be stored.
    fn email_alerts(&mut self, at: &str, record: &Record) -> Result<(), String> {
        let raw = record
            .param_str("account_token")
            .unwrap_or_default()
            .to_owned();
        let p = record.params();
        let alerts = self.alerts.entry(raw.clone()).or_default();
        if let Some(x) = p["warning_threshold"].as_f64() {
            alerts.threshold = Some(x);
        }
        let emails = p["warning_emails"].as_array().map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["email"].as_str().unwrap_or_default().to_owned(),
                        i["lang_code"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        });
        self.stored_alerts(at, &raw, emails)
    }

    /// 17 `write`: only the non-null settings change.
    fn warning_odoo(&mut self, at: &str, record: &Record) -> Result<(), String> {
        let raw = record
            .param_str("account_token")
            .unwrap_or_default()
            .to_owned();
        let p = record.params();
        let alerts = self.alerts.entry(raw.clone()).or_default();
        if let Some(x) = p["warning_threshold"].as_f64() {
            alerts.threshold = Some(x);
        }
        if let Some(w) = p["warn_me"].as_bool() {
            alerts.warn_me = Some(w);
        }
        if let Some(e) = p["warning_email"].as_str() {
            alerts.email = Some(e.to_owned());
        }
        let emails = p["warning_email"].as_str().map(|list| {
            list.split(',')
                .map(|e| (e.trim().to_owned(), None))
                .collect()
        });
        self.stored_alerts(at, &raw, emails)
    }

    /// 17 list view: `iap.account.info.create()` of each item, so only its fields, and
    /// `account_token` must be one of the database's tokens.
    fn services_token(&mut self, at: &str, record: &Record, result: &Value) -> Result<(), String> {
        let sent: BTreeSet<&str> = record.params()["iap_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let Some(items) = result.as_array() else {
            self.problems.push(format!(
                "{at}: Odoo 17 needs a list of account infos, got {result}"
            ));
            return Ok(());
        };
        let mut found = Vec::new();
        let mut listed = BTreeSet::new();
        for item in items {
            let Some(fields) = item.as_object() else {
                found.push(format!("item is not an object: {item}"));
                continue;
            };
            let keys: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
            let wanted: BTreeSet<&str> = INFO_KEYS.into_iter().collect();
            if keys != wanted {
                found.push(format!(
                    "item keys {keys:?} differ from iap.account.info's {wanted:?}"
                ));
            }
            let raw = item["account_token"].as_str().unwrap_or_default();
            if !sent.contains(raw) {
                found.push(format!("account_token {raw:?} was not sent"));
                continue;
            }
            listed.insert(raw.to_owned());
            found.extend(self.info_item(raw, item)?);
        }
        for raw in self
            .balance_read
            .iter()
            .filter(|t| sent.contains(t.as_str()))
        {
            if !listed.contains(raw) {
                found.push(format!(
                    "{raw} (balance read earlier, registered) is missing"
                ));
            }
        }
        self.problems
            .extend(found.into_iter().map(|p| format!("{at}: {p}")));
        Ok(())
    }

    /// The values of one 17 info item against the store and the settings written.
    fn info_item(&self, raw: &str, item: &Value) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        for key in ["balance", "warning_threshold"] {
            if !item[key].is_number() {
                found.push(format!("{key} of {raw} is not a number: {item}"));
            }
        }
        if !item["warn_me"].is_boolean() {
            found.push(format!("warn_me of {raw} is not a boolean: {item}"));
        }
        for key in [
            "service_name",
            "description",
            "unit_name",
            "account_uuid_hashed",
        ] {
            if !item[key].is_string() {
                found.push(format!("{key} of {raw} is not a string: {item}"));
            }
        }
        if !(item["warning_email"].is_string() || item["warning_email"] == false) {
            found.push(format!(
                "warning_email of {raw} is neither text nor false: {item}"
            ));
        }
        let service = item["service_name"].as_str().unwrap_or_default();
        let stored = self.available(service, raw)?;
        if stored.is_none() || stored != item["balance"].as_f64() {
            found.push(format!(
                "balance of {raw}/{service}: {item}, the store has {stored:?}"
            ));
        }
        if let Some(alerts) = self.alerts.get(raw) {
            if let Some(x) = alerts.threshold
                && item["warning_threshold"].as_f64() != Some(x)
            {
                found.push(format!(
                    "{raw}: warning_threshold {item} after the client saved {x}"
                ));
            }
            if let Some(w) = alerts.warn_me
                && item["warn_me"].as_bool() != Some(w)
            {
                found.push(format!("{raw}: warn_me {item} after the client saved {w}"));
            }
            if let Some(e) = &alerts.email
                && item["warning_email"].as_str() != Some(e)
            {
                found.push(format!(
                    "{raw}: warning_email {item} after the client saved {e:?}"
                ));
            }
        }
        Ok(found)
    }

    /// A transaction token, and the hold in the store.
    fn authorize(&mut self, at: &str, record: &Record, result: &Value) -> Result<(), String> {
        let Some(transaction) = result.as_str().filter(|t| t.len() >= 32) else {
            self.problems.push(format!(
                "{at}: expected a transaction token of at least 32 characters, got {result}"
            ));
            return Ok(());
        };
        let raw = record
            .param_str("account_token")
            .unwrap_or_default()
            .to_owned();
        let amount = units(&record.params()["credit"])?;
        self.model.entry(raw.clone()).or_insert((0, 0)).1 += amount;
        self.open.push(Open {
            transaction: transaction.to_owned(),
            account_token: raw,
            units: amount,
        });
        self.check_provider_model(at)
    }

    /// Capture or cancel: `true`, and the hold closed in the store.
    fn close(
        &mut self,
        at: &str,
        record: &Record,
        result: &Value,
        open: Open,
    ) -> Result<(), String> {
        self.check(*result == json!(true), at, || {
            format!("expected true, got {result}")
        });
        let entry = self.model.entry(open.account_token).or_insert((0, 0));
        entry.1 -= open.units;
        if record.path == "/iap/1/capture" {
            let captured = match &record.params()["credit_to_capture"] {
                Value::Null => open.units,
                v => units(v)?,
            };
            entry.0 -= captured;
        }
        self.check_provider_model(at)
    }

    /// Authorize more than is available: an `InsufficientCreditError` the 16–18 dialog and
    /// `iap_authorize` can read, with a buy link to this sidecar, and nothing reserved.
    fn insufficient_credit(&mut self, raw: &str) -> Result<(), String> {
        let at = format!("odoo{} insufficient authorize", self.version);
        let s = self.s;
        let store = &s.db.store;
        let account = store
            .ensure_account(self.provider.id, &token(raw), None)
            .map_err(|e| e.to_string())?;
        let before = store.balance(account.id).map_err(|e| e.to_string())?;
        let holds = store
            .open_holds(account.id)
            .map_err(|e| e.to_string())?
            .len();
        let journal = store
            .journal(account.id, None, 1000)
            .map_err(|e| e.to_string())?
            .len();
        let wanted = before.available.to_f64() + 1000.0;
        let answer = self.s.call(
            "/iap/1/authorize",
            json!({"account_token": raw, "credit": wanted, "key": PROVIDER_KEY,
                   "description": "more than available", "ttl": 4320}),
        );
        let data = &answer.body["error"]["data"];
        self.check(answer.status == 200, &at, || {
            format!("HTTP {}", answer.status)
        });
        self.check(
            data["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("InsufficientCreditError")),
            &at,
            || {
                format!(
                    "data.name must end with InsufficientCreditError: {}",
                    answer.body
                )
            },
        );
        match data["message"]
            .as_str()
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        {
            Some(Value::Object(payload)) => self.insufficient_payload(&at, &payload, wanted),
            _ => self.problems.push(format!(
                "{at}: data.message must be a JSON object in a string: {}",
                answer.body
            )),
        }
        let after = store.balance(account.id).map_err(|e| e.to_string())?;
        let holds_after = store
            .open_holds(account.id)
            .map_err(|e| e.to_string())?
            .len();
        let journal_after = store
            .journal(account.id, None, 1000)
            .map_err(|e| e.to_string())?
            .len();
        self.check(
            (before, holds, journal) == (after, holds_after, journal_after),
            &at,
            || format!("a refused authorize changed the account: {before:?} -> {after:?}"),
        );
        Ok(())
    }

    fn insufficient_payload(&mut self, at: &str, payload: &Map<String, Value>, wanted: f64) {
        let expected_url = format!("{}/iap/1/credit", self.s.base);
        let checks: [(&str, bool); 6] = [
            (
                "message (string)",
                payload.get("message").is_some_and(Value::is_string),
            ),
            (
                "title (string)",
                payload.get("title").is_some_and(Value::is_string),
            ),
            (
                "credit (a number, at most what was asked)",
                payload
                    .get("credit")
                    .and_then(Value::as_f64)
                    .is_some_and(|c| c > 0.0 && c <= wanted),
            ),
            (
                "service_name (the provider's)",
                payload.get("service_name").and_then(Value::as_str) == Some(PROVIDER),
            ),
            (
                "trial (bool)",
                payload.get("trial").is_some_and(Value::is_boolean),
            ),
            (
                "base_url (this sidecar's /iap/1/credit)",
                payload.get("base_url").and_then(Value::as_str) == Some(expected_url.as_str()),
            ),
        ];
        for (what, ok) in checks {
            self.check(ok, at, || format!("payload needs {what}: {payload:?}"));
        }
    }
}

/// Replays one fixture file on a fresh sidecar; returns the problems found.
fn replay_file(backend: &Backend, version: &str) -> Result<Vec<String>, Failed> {
    let file = format!("odoo{version}-iap-requests.jsonl");
    let records = load(&file)?;
    if records.is_empty() {
        return Err(format!("{file}: no request to an IAP route").into());
    }
    let s = Sidecar::start(backend)?;
    s.service("sms", "sms-key", None);
    let provider = s.service(PROVIDER, PROVIDER_KEY, None);
    let mut model = HashMap::new();
    for record in records.iter().filter(|r| r.path == "/iap/1/authorize") {
        let raw = record
            .param_str("account_token")
            .ok_or_else(|| format!("{file}:{}: authorize without account_token", record.line))?;
        if !model.contains_key(raw) {
            s.grant(&provider, raw, GRANT);
            model.insert(raw.to_owned(), (GRANT * 10_000, 0));
        }
    }
    // Odoo's client routes register nothing: the accounts they name exist because a
    // provider or the operator opened them, here the operator, with the database named.
    for record in &records {
        let params = &record.body["params"];
        let db = record.param_str("dbuuid");
        let mut named: Vec<(&str, &str)> = Vec::new();
        if let Some(raw) = record.param_str("account_token") {
            named.push((raw, record.param_str("service_name").unwrap_or("sms")));
        }
        for item in params["iap_accounts"].as_array().into_iter().flatten() {
            match item {
                Value::String(raw) => named.push((raw, "sms")),
                item => {
                    if let (Some(raw), Some(service)) =
                        (item["token"].as_str(), item["service"].as_str())
                    {
                        named.push((raw, service));
                    }
                }
            }
        }
        for (raw, service) in named {
            let Ok(service) = s.db.store.service_by_name(service) else {
                continue;
            };
            if record.path == "/iap/1/authorize" {
                continue;
            }
            s.db.store
                .ensure_account(service.id, &token(raw), db)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut replay = Replay {
        s: &s,
        version,
        provider,
        open: Vec::new(),
        model,
        alerts: HashMap::new(),
        balance_read: BTreeSet::new(),
        problems: Vec::new(),
    };
    for record in &records {
        replay.replay(record)?;
    }
    // A provider account when the file has one, else the first client token.
    let raw = records
        .iter()
        .find(|r| r.path == "/iap/1/authorize")
        .or_else(|| {
            records
                .iter()
                .find(|r| r.param_str("account_token").is_some())
        })
        .and_then(|r| r.param_str("account_token"))
        .ok_or_else(|| format!("{file}: no account token to authorize"))?;
    replay.insufficient_credit(raw)?;
    eprintln!("{file}: {} IAP requests replayed", records.len());
    Ok(replay.problems)
}

pub fn iap_fixture_replay(backend: &Backend) -> Result<(), Failed> {
    let mut problems = Vec::new();
    for version in ["17", "18", "19"] {
        problems.extend(replay_file(backend, version)?);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) replaying Odoo's IAP requests:\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
        .into())
    }
}
