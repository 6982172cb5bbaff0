//! Against a real, normally running Odoo 17, 18 or 19 (`ODOO_URL`, `ODOO_DB`, `ODOO_USER`,
//! `ODOO_PASSWORD`): point `iap.endpoint` at a sidecar and check that the stock `iap`
//! addon reads and writes our ledger. Odoo blocks IAP calls inside its own test runner,
//! so this drives a normally running server over JSON-RPC.

use std::process::Command;

use libtest_mimic::Failed;
use serde_json::{Value, json};

use crate::rpc::Sidecar;
use crate::support::Backend;

pub const ENV: [&str; 4] = ["ODOO_URL", "ODOO_DB", "ODOO_USER", "ODOO_PASSWORD"];

/// The Odoo connection settings, when all four are set.
pub fn configured() -> Option<[String; 4]> {
    let values: Vec<String> = ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .collect();
    values.try_into().ok()
}

/// A JSON-RPC session on Odoo's `/jsonrpc`.
struct Odoo {
    url: String,
    db: String,
    uid: i64,
    password: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Odoo {
    fn call(&self, service: &str, method: &str, args: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1,
                          "params": {"service": service, "method": method, "args": args}});
        let answer: Value = self.rt.block_on(async {
            self.client
                .post(format!("{}/jsonrpc", self.url))
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("{} unreachable: {e}", self.url))?
                .json()
                .await
                .map_err(|e| format!("not JSON: {e}"))
        })?;
        if let Some(error) = answer.get("error") {
            return Err(format!("{service}.{method}: {}", error["data"]["message"]));
        }
        // Odoo leaves `result` out when a method returns None.
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    fn connect([url, db, user, password]: [String; 4]) -> Result<Odoo, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut odoo = Odoo {
            url: url.trim_end_matches('/').to_owned(),
            db,
            uid: 0,
            password,
            client: reqwest::Client::new(),
            rt,
        };
        let uid = odoo.call(
            "common",
            "authenticate",
            json!([odoo.db, user, odoo.password, {}]),
        )?;
        odoo.uid = uid
            .as_i64()
            .ok_or_else(|| format!("authentication refused for {user}: {uid}"))?;
        Ok(odoo)
    }

    fn execute(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, String> {
        self.call(
            "object",
            "execute_kw",
            json!([
                self.db,
                self.uid,
                self.password,
                model,
                method,
                args,
                kwargs
            ]),
        )
    }

    fn param(&self, key: &str) -> Result<Value, String> {
        self.execute("ir.config_parameter", "get_param", json!([key]), json!({}))
    }

    fn set_param(&self, key: &str, value: &Value) -> Result<(), String> {
        self.execute(
            "ir.config_parameter",
            "set_param",
            json!([key, value]),
            json!({}),
        )
        .map(|_| ())
    }
}

/// Puts `iap.endpoint` back as it was, whatever happens in the test.
struct EndpointGuard<'a> {
    odoo: &'a Odoo,
    previous: Value,
}

impl Drop for EndpointGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.odoo.set_param("iap.endpoint", &self.previous) {
            eprintln!("warning: could not restore iap.endpoint: {e}");
        }
    }
}

pub fn real_odoo_flows(backend: &Backend) -> Result<(), Failed> {
    let settings =
        configured().ok_or("ODOO_URL, ODOO_DB, ODOO_USER and ODOO_PASSWORD are not all set")?;
    let odoo = Odoo::connect(settings)?;
    let version = odoo.call("common", "version", json!([]))?;
    let series = version["server_serie"].as_str().unwrap_or("?").to_owned();
    // Odoo 18 made services records (`iap.service`) and added the account's `state`.
    let major = version["server_version_info"][0].as_i64().unwrap_or(0);
    let dbuuid = odoo.param("database.uuid")?;

    // A service Odoo knows (`reveal` ships with `iap`), registered in the sidecar.
    let (service_name, unit) = if major >= 18 {
        let services = odoo.execute(
            "iap.service",
            "search_read",
            json!([[]]),
            json!({"fields": ["technical_name", "unit_name", "integer_balance"], "limit": 1}),
        )?;
        let name = services[0]["technical_name"]
            .as_str()
            .ok_or("this Odoo has no iap.service")?
            .to_owned();
        let unit = services[0]["unit_name"]
            .as_str()
            .unwrap_or("Credits")
            .to_owned();
        (name, unit)
    } else {
        ("reveal".to_owned(), "Credits".to_owned())
    };
    let sidecar = Sidecar::start(backend)?;
    let service = sidecar.service(&service_name, "odoo-test-provider-key", None);

    let previous = odoo.param("iap.endpoint")?;
    odoo.set_param("iap.endpoint", &json!(sidecar.base))?;
    let _restore = EndpointGuard {
        odoo: &odoo,
        previous,
    };

    // The account Odoo creates for the service, and its token (17 has no
    // get_account_id: the account is made the way its `get` makes it).
    let account_id = if major >= 18 {
        odoo.execute(
            "iap.account",
            "get_account_id",
            json!([service_name]),
            json!({}),
        )?
    } else {
        let found = odoo.execute(
            "iap.account",
            "search",
            json!([[["service_name", "=", service_name]]]),
            json!({"limit": 1}),
        )?;
        match found[0].as_i64() {
            Some(id) => json!(id),
            None => odoo.execute(
                "iap.account",
                "create",
                json!([{"service_name": service_name}]),
                json!({}),
            )?,
        }
    }
    .as_i64()
    .ok_or("no iap.account id")?;
    let token = odoo.execute(
        "iap.account",
        "read",
        json!([[account_id], ["account_token"]]),
        json!({}),
    )?[0]["account_token"]
        .as_str()
        .ok_or("no account_token")?
        .to_owned();

    // Credits granted with the operator CLI, on the sidecar's own database.
    let granted = Command::new(env!("CARGO_BIN_EXE_iap-sidecar"))
        .args([
            "credit",
            "grant",
            &token,
            &service_name,
            "42",
            "--description",
            "real odoo test",
        ])
        .env("IAP_SIDECAR__DATABASE__URL", sidecar.db.url())
        .env("IAP_SIDECAR__LOG__LEVEL", "warn")
        .output()?;
    if !granted.status.success() {
        return Err(format!(
            "CLI grant failed: {}",
            String::from_utf8_lossy(&granted.stderr)
        )
        .into());
    }

    let credits = odoo.execute(
        "iap.account",
        "get_credits",
        json!([service_name]),
        json!({}),
    )?;
    assert_eq!(credits.as_f64(), Some(42.0), "get_credits: {credits}");

    if major < 18 {
        // 17 reads the figures when the account list opens (`/iap/services-token`).
        odoo.execute(
            "iap.account",
            "get_view",
            json!([]),
            json!({"view_type": "tree"}),
        )?;
    }
    let spec = if major >= 18 {
        json!({"balance": {}, "state": {}, "warning_threshold": {}})
    } else {
        json!({"balance": {}, "warning_threshold": {}})
    };
    let read = odoo.execute(
        "iap.account",
        "web_read",
        json!([[account_id], spec]),
        json!({}),
    )?;
    let record = &read[0];
    let shown = record["balance"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with("42") && shown.ends_with(&unit),
        "balance shown as {shown:?}"
    );
    if major >= 18 {
        assert_eq!(record["state"], "registered", "{record}");
    }

    // A threshold written in Odoo lands on the sidecar's account, and reads back.
    odoo.execute(
        "iap.account",
        "write",
        json!([[account_id], {"warning_threshold": 5.5}]),
        json!({}),
    )?;
    let tok = iap_sidecar::ledger::token::AccountToken::from_raw(&token).ok_or("token")?;
    let account = sidecar
        .db
        .store
        .find_account(service.id, &tok)?
        .ok_or("the sidecar never saw the account")?;
    assert_eq!(account.alerts.threshold.to_string(), "5.5");
    // Odoo's own calls name its database but do not authenticate it: the account the
    // operator opened stays without one until a provider's authorize names it.
    assert!(dbuuid.is_string(), "Odoo sends its dbuuid: {dbuuid}");
    assert_eq!(account.dbuuid, None);
    let read = odoo.execute(
        "iap.account",
        "web_read",
        json!([[account_id], spec]),
        json!({}),
    )?;
    assert_eq!(read[0]["warning_threshold"].as_f64(), Some(5.5), "{read}");

    // A provider charge through the sidecar shows in Odoo's next balance read.
    let tx = sidecar
        .call(
            "/iap/1/authorize",
            json!({"account_token": token, "credit": 2, "key": "odoo-test-provider-key",
                   "description": "job", "ttl": 1}),
        )
        .result()
        .as_str()
        .ok_or("no transaction")?
        .to_owned();
    sidecar
        .call(
            "/iap/1/capture",
            json!({"token": tx, "key": "odoo-test-provider-key", "credit_to_capture": 2}),
        )
        .result();
    let credits = odoo.execute(
        "iap.account",
        "get_credits",
        json!([service_name]),
        json!({}),
    )?;
    assert_eq!(
        credits.as_f64(),
        Some(40.0),
        "get_credits after a charge: {credits}"
    );
    eprintln!(
        "[odoo {series}] service {service_name}: get_credits 42 → 40 after a charge, \
         web_read balance {shown:?}, threshold 5.5 written and read back"
    );
    Ok(())
}
