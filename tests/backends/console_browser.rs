//! The operator's console in headless Chromium (the portal browser test's driver and
//! helpers): sign in with an admin token, create a service (its key shown once), put a
//! pack on sale, give 100 credits, see the overview's figures and chart change after
//! charges made through the protocol, confirm an order, revoke a token. Screenshots go to
//! `target/console-overview.png` and `target/console-account.png`; the browser's console
//! log must hold no error.

use fantoccini::{Client, ClientBuilder, Locator};
use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{AccountId, Credits};
use iap_sidecar::pages::i18n::Lang;
use iap_sidecar::payments::OrderStatus;
use libtest_mimic::Failed;
use serde_json::json;

use crate::portal_browser::{Driver, arrive, check, click, screenshot, text, tools};
use crate::portal_web::sidecar;
use crate::rpc::Sidecar;
use crate::support::Backend;

pub fn console_browser_flow(backend: &Backend) -> Result<(), Failed> {
    let tools = tools()?;
    let sc = sidecar(backend)?;
    let ops = sc.db.store.create_admin_token("ops")?;
    sc.db.store.create_admin_token("night-shift")?;
    let driver = Driver::start(&tools.chromedriver)?;
    let profile = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tools.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900", "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {"intl.accept_languages": "en-US,en"},
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .map_err(|e| format!("WebDriver session: {e}"))?;
        let result = flow(&client, &sc, &ops).await;
        let _ = client.close().await;
        result
    })?;
    Ok(())
}

/// chromedriver's browser log (`goog:loggingPrefs`): what the page's console showed.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Fails on any error or warning the browser logged since the last call.
async fn no_console_errors(client: &Client, page: &str) -> Result<(), String> {
    let entries = client
        .issue_cmd(BrowserLog)
        .await
        .map_err(|e| format!("reading the browser log: {e}"))?;
    let bad: Vec<&serde_json::Value> = entries
        .as_array()
        .ok_or_else(|| format!("browser log is not a list: {entries}"))?
        .iter()
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
        .collect();
    check(
        bad.is_empty(),
        format!("browser console on {page}: {bad:?}"),
    )
}

async fn type_into(client: &Client, css: &str, value: &str) -> Result<(), String> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
        .send_keys(value)
        .await
        .map_err(|e| format!("typing into {css}: {e}"))
}

async fn goto(client: &Client, sc: &Sidecar, path: &str) -> Result<(), String> {
    client
        .goto(&format!("{}{path}", sc.base))
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    arrive(client, path.split('?').next().unwrap_or(path), None).await?;
    no_console_errors(client, path).await
}

fn credits_text(c: Credits) -> String {
    Lang::En.number(c)
}

async fn flow(client: &Client, sc: &Sidecar, ops: &str) -> Result<(), String> {
    let store = &sc.db.store;
    // 1. Signed out, the console sends to its sign-in form; an admin token opens it.
    client
        .goto(&format!("{}/console", sc.base))
        .await
        .map_err(|e| e.to_string())?;
    arrive(client, "/console/login", None).await?;
    type_into(client, "#token", ops).await?;
    click(client, "form[action='/console/login'] button[type=submit]").await?;
    arrive(client, "/console", None).await?;
    no_console_errors(client, "/console").await?;
    let consumed = text(client, "[data-figure=consumed-today]").await?;
    check(
        consumed == "0",
        format!("consumed today before any charge: {consumed}"),
    )?;

    // 2. Create a service: its provider key is shown once.
    goto(client, sc, "/console/services").await?;
    type_into(client, "#name", "sms").await?;
    type_into(client, "#label", "SMS").await?;
    click(client, "#new-service button[type=submit]").await?;
    arrive(client, "/console/services", None).await?;
    let key = text(client, "#shown-key").await?;
    check(key.starts_with("iapkey_"), format!("shown key: {key}"))?;
    let service = store.service_by_name("sms").map_err(|e| e.to_string())?;
    check(
        store
            .service_by_key(&key)
            .map_err(|e| e.to_string())?
            .is_some_and(|s| s.id == service.id),
        "the shown key opens the service",
    )?;
    // …and a pack on sale.
    let packs = "form[action='/console/services/sms/packs']";
    type_into(client, &format!("{packs} input[name=name]"), "Standard").await?;
    type_into(client, &format!("{packs} input[name=credits]"), "100").await?;
    type_into(client, &format!("{packs} input[name=price]"), "40").await?;
    click(client, &format!("{packs} button[type=submit]")).await?;
    arrive(client, "/console/services", None).await?;
    no_console_errors(client, "/console/services").await?;
    let pack = store
        .packs(service.id, true)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("no pack on sale")?;

    // 3. Give 100 credits to an account (registered by the grant).
    goto(client, sc, "/console/accounts").await?;
    type_into(client, "#g-token", "tok-browser-0001").await?;
    type_into(client, "#g-amount", "100").await?;
    type_into(client, "#g-db", "db-browser").await?;
    click(client, "#grant button[type=submit]").await?;
    arrive(client, "/console/accounts/", None).await?;
    let account: AccountId = store
        .find_account(
            service.id,
            &AccountToken::from_raw("tok-browser-0001").ok_or("token")?,
        )
        .map_err(|e| e.to_string())?
        .ok_or("account not registered")?
        .id;
    let hundred = Credits::whole(100).map_err(|e| e.to_string())?;
    let shown = text(client, "#available").await?;
    check(
        shown == credits_text(hundred),
        format!("available after the grant: {shown}"),
    )?;
    check(
        store.balance(account).map_err(|e| e.to_string())?.balance == hundred,
        "the balance is 100",
    )?;

    // 4. Charges through the protocol, as a provider makes them.
    let mut charged = Credits::ZERO;
    for (credit, capture) in [(5.0, 2.5), (10.0, 7.25), (1.0, 1.0)] {
        // The test's JSON-RPC client blocks on its own runtime: call it from a thread of
        // its own while the browser waits.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let tx = sc
                        .call(
                            "/iap/1/authorize",
                            json!({"key": key, "account_token": "tok-browser-0001",
                                   "credit": credit, "description": "browser test",
                                   "dbuuid": "db-browser"}),
                        )
                        .result()
                        .as_str()
                        .expect("transaction token")
                        .to_owned();
                    sc.call(
                        "/iap/1/capture",
                        json!({"token": tx, "key": key, "credit_to_capture": capture}),
                    )
                    .result();
                })
                .join()
        })
        .map_err(|_| "a protocol charge failed".to_owned())?;
        charged = charged
            .checked_add(Credits::parse_exact(&capture.to_string()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    goto(client, sc, "/console").await?;
    let consumed = text(client, "[data-figure=consumed-today]").await?;
    check(
        consumed == credits_text(charged),
        format!("consumed today after the charges: {consumed}, expected {charged}"),
    )?;
    let sold = text(client, "[data-figure=sold-all]").await?;
    check(sold == credits_text(hundred), format!("sold: {sold}"))?;
    let bars = client
        .find_all(Locator::Css("svg.chart.wide .bar"))
        .await
        .map_err(|e| e.to_string())?;
    check(!bars.is_empty(), "the consumption chart has a bar")?;
    let chart = text(client, ".card h3").await?;
    check(chart.contains("sms"), format!("chart title: {chart}"))?;
    screenshot(client, 1280, 1300, "console-overview.png").await?;

    // 5. Confirm an order the customer placed in the portal.
    let order = store
        .create_order(account, pack.id)
        .map_err(|e| e.to_string())?;
    goto(client, sc, "/console/orders?status=pending").await?;
    click(
        client,
        &format!("#order-{} form[action$='/confirm'] button", order.id),
    )
    .await?;
    arrive(client, "/console/orders", None).await?;
    no_console_errors(client, "/console/orders").await?;
    let status = store.order(order.id).map_err(|e| e.to_string())?.status;
    check(
        status == OrderStatus::Credited,
        format!("order: {status:?}"),
    )?;
    goto(client, sc, &format!("/console/accounts/{account}")).await?;
    let expected = hundred
        .checked_add(hundred)
        .and_then(|c| c.checked_sub(charged))
        .map_err(|e| e.to_string())?;
    let shown = text(client, "#available").await?;
    check(
        shown == credits_text(expected),
        format!("available after the order: {shown}"),
    )?;
    screenshot(client, 1280, 1500, "console-account.png").await?;

    // 6. Revoke another operator's token.
    goto(client, sc, "/console/tokens").await?;
    click(
        client,
        "form[action='/console/tokens/night-shift/revoke'] button",
    )
    .await?;
    arrive(client, "/console/tokens", None).await?;
    no_console_errors(client, "/console/tokens").await?;
    let revoked = store
        .list_admin_tokens()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|t| t.name == "night-shift")
        .ok_or("token gone")?;
    check(revoked.revoked_at.is_some(), "night-shift is revoked")?;

    // 7. Every action is in the audit log.
    goto(client, sc, "/console/audit").await?;
    let audit = text(client, "#audit").await?;
    for action in [
        "sign_in",
        "service.create",
        "pack.create",
        "grant",
        "order.confirm",
        "token.revoke",
    ] {
        check(
            audit.contains(action),
            format!("{action} not in the audit log: {audit}"),
        )?;
    }
    Ok(())
}
