//! The portal in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver, with `fantoccini`).
//!
//! Follows a "Buy credits" link as Odoo builds it, checks the token left the URL, buys a
//! pack, pays it with a signed webhook call, sees the new balance and statement line,
//! changes the alert threshold, downloads the CSV and reads it, and saves screenshots of
//! the account page (`target/portal-account.png`, `target/portal-account-phone.png`) and of
//! the provider page (`target/portal-provider.png`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{AccountId, Credits};
use libtest_mimic::Failed;
use serde_json::json;

use iap_sidecar::payments::{OrderId, webhook};

use crate::portal_web::{WEBHOOK_SECRET, now_secs, service_with_packs, sidecar};
use crate::rpc::Sidecar;
use crate::support::{Backend, HOUR};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const DAY: i64 = 24 * HOUR;

/// Where the browser and its driver are.
pub struct Tools {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The tools, or what is missing (with the install command).
pub fn tools() -> Result<Tools, String> {
    let chromium = CHROMIUM
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| on_path("chromium"));
    let chromedriver = on_path("chromedriver");
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok(Tools {
            chromium,
            chromedriver,
        }),
        _ => Err(
            "the browser test needs Debian's chromium and chromium-driver \
                  (apt-get install -y chromium chromium-driver)"
                .into(),
        ),
    }
}

/// chromedriver on a free loopback port, stopped (by its own pid) on drop.
pub(crate) struct Driver {
    child: Child,
    pub(crate) url: String,
}

impl Driver {
    pub(crate) fn start(path: &Path) -> Result<Driver, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.display()))?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A few weeks of use before the test starts, so the chart and statement have content.
fn history(sc: &Sidecar, account: AccountId) {
    let store = &sc.db.store;
    let uses = [
        3, 5, 0, 2, 8, 4, 0, 1, 6, 7, 3, 0, 0, 9, 4, 2, 5, 3, 0, 6, 2,
    ];
    for (day, n) in uses.iter().enumerate() {
        sc.db.advance(DAY);
        if *n == 0 {
            continue;
        }
        let description = format!(
            "SMS campaign «Week {}» ({n} recipient{})",
            day / 7 + 1,
            if *n == 1 { "" } else { "s" }
        );
        let (_, token, _) = store
            .authorize(
                account,
                Credits::whole(*n).expect("c"),
                1,
                Some(&description),
            )
            .expect("authorize");
        store.capture(&token, None, None).expect("capture");
    }
    sc.db.advance(3 * HOUR);
    store
        .authorize(
            account,
            Credits::whole(2).expect("c"),
            24,
            Some("SMS to 2 recipients, sending"),
        )
        .expect("open hold");
}

/// The whole flow on one backend.
pub fn portal_browser_flow(backend: &Backend) -> Result<(), Failed> {
    let tools = tools()?;
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    sc.grant(&sms, "5f8d3c0a9b7e4d21a6c4f0e2b8d9a731", 90);
    // The portal link names the database but does not fix it: the operator does.
    sc.db.store.ensure_account(
        sms.id,
        &iap_sidecar::ledger::token::AccountToken::from_raw("5f8d3c0a9b7e4d21a6c4f0e2b8d9a731")
            .ok_or("token")?,
        Some("8f3c2a10-6d4e-4b1f-9a7c-2e5d6f8a9b0c"),
    )?;
    let account = sc
        .db
        .store
        .find_account(
            sms.id,
            &AccountToken::from_raw("5f8d3c0a9b7e4d21a6c4f0e2b8d9a731").expect("token"),
        )
        .expect("lookup")
        .expect("account")
        .id;
    history(&sc, account);
    let driver = Driver::start(&tools.chromedriver)?;
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let downloads = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
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
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "intl.accept_languages": "en-US,en",
                },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .map_err(|e| format!("WebDriver session: {e}"))?;
        let result = flow(&client, &sc, account, downloads.path()).await;
        let _ = client.close().await;
        result
    })?;
    Ok(())
}

pub(crate) async fn text(client: &Client, css: &str) -> Result<String, String> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{css}: {e}"))
}

pub(crate) async fn click(client: &Client, css: &str) -> Result<(), String> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
        .click()
        .await
        .map_err(|e| format!("click {css}: {e}"))
}

/// The current URL: (path, query, whole).
async fn url(client: &Client) -> Result<(String, Option<String>, String), String> {
    let u = client.current_url().await.map_err(|e| e.to_string())?;
    Ok((
        u.path().to_owned(),
        u.query().map(str::to_owned),
        u.to_string(),
    ))
}

pub(crate) async fn screenshot(
    client: &Client,
    width: u32,
    height: u32,
    file: &str,
) -> Result<(), String> {
    client
        .set_window_size(width, height)
        .await
        .map_err(|e| e.to_string())?;
    let png = client.screenshot().await.map_err(|e| e.to_string())?;
    let path = target_dir().join(file);
    std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// Waits for the navigation a click started: until the path starts with `prefix` (is
/// `prefix` exactly, when it does not end with `/`) and, when given, the query is
/// `query` (a click returns before the next page is loaded).
pub(crate) async fn arrive(
    client: &Client,
    prefix: &str,
    query: Option<&str>,
) -> Result<(String, Option<String>, String), String> {
    let started = Instant::now();
    loop {
        let (path, q, whole) = url(client).await?;
        let here = if prefix.ends_with('/') {
            path.starts_with(prefix)
        } else {
            path == prefix
        };
        if here && (query.is_none() || q.as_deref() == query) {
            // The new document must be the loaded one before it is read.
            let ready = client
                .execute("return document.readyState", vec![])
                .await
                .map_err(|e| e.to_string())?;
            if ready == "complete" {
                return Ok((path, q, whole));
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("still on {whole}, waiting for {prefix}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

async fn flow(
    client: &Client,
    sc: &Sidecar,
    account: AccountId,
    downloads: &Path,
) -> Result<(), String> {
    // 1. The link Odoo 17 opens from an insufficient-credit error.
    let link = format!(
        "{}/iap/1/credit?dbuuid=8f3c2a10-6d4e-4b1f-9a7c-2e5d6f8a9b0c&service_name=sms\
         &account_token=5f8d3c0a9b7e4d21a6c4f0e2b8d9a731&credit=50",
        sc.base
    );
    client.goto(&link).await.map_err(|e| e.to_string())?;
    let (path, _, landed) = url(client).await?;
    check(
        path == format!("/portal/accounts/{account}"),
        format!("landed on {landed}"),
    )?;
    check(
        !landed.contains("5f8d3c0a") && !landed.contains("account_token"),
        format!("the token stayed in the URL: {landed}"),
    )?;
    let before = sc.db.store.balance(account).map_err(|e| e.to_string())?;
    let shown = text(client, "#available").await?;
    check(
        shown.starts_with(&before.available.to_string()),
        format!("available shown {shown:?}, ledger {}", before.available),
    )?;

    // 2. The smallest pack covering the 50 credits is preselected; buy it.
    let chosen = client
        .find(Locator::Css("input[name=pack_id]:checked"))
        .await
        .map_err(|e| format!("no pack preselected: {e}"))?
        .attr("value")
        .await
        .map_err(|e| e.to_string())?;
    check(
        chosen.as_deref() == Some("2"),
        format!("preselected pack {chosen:?}"),
    )?;
    click(client, "#buy-button").await?;
    let (order_path, _, order_url) = arrive(client, "/portal/orders/", None).await?;
    let order: OrderId = order_path
        .strip_prefix("/portal/orders/")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("not an order page: {order_url}"))?;
    let status = text(client, "#order-status").await?;
    check(
        status == "Awaiting payment",
        format!("order status {status:?}"),
    )?;

    // 3. The payment provider's webhook, signed like a real one.
    let event = json!({"id": format!("evt_browser_{order}"), "type": "payment.succeeded",
        "order_id": order, "amount_minor": 4000, "currency": "EUR", "reference": "pi_3Nx"})
    .to_string();
    let timestamp = now_secs(sc).to_string();
    let signature = webhook::sign(WEBHOOK_SECRET.as_bytes(), &timestamp, event.as_bytes());
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/payments/webhook", sc.base))
        .header("content-type", "application/json")
        .header("x-iap-timestamp", timestamp)
        .header("x-iap-signature", signature)
        .body(event)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body = answer.text().await.map_err(|e| e.to_string())?;
    check(
        status == 200 && body.contains("\"credited_now\":true"),
        format!("webhook: {status} {body}"),
    )?;
    client.goto(&order_url).await.map_err(|e| e.to_string())?;
    let status = text(client, "#order-status").await?;
    check(
        status == "Credited",
        format!("order status after payment {status:?}"),
    )?;

    // 4. The new balance and the statement line.
    client
        .goto(&format!("{}/portal/accounts/{account}", sc.base))
        .await
        .map_err(|e| e.to_string())?;
    let expected = before.available.units() + 100 * 10_000;
    let shown = text(client, "#available").await?;
    let expected_text = Credits::from_units(expected)
        .map_err(|e| e.to_string())?
        .to_string();
    check(
        shown.starts_with(&expected_text),
        format!("available after purchase {shown:?}, want {expected_text}"),
    )?;
    let statement = text(client, "#journal").await?;
    check(
        statement.contains(&format!("Order #{order}: Standard")) && statement.contains("+100"),
        format!("statement: {statement}"),
    )?;

    // 5. The low-credit alert settings.
    let threshold = client
        .find(Locator::Css("#threshold"))
        .await
        .map_err(|e| e.to_string())?;
    threshold.clear().await.map_err(|e| e.to_string())?;
    threshold.send_keys("15").await.map_err(|e| e.to_string())?;
    let emails = client
        .find(Locator::Css("#emails"))
        .await
        .map_err(|e| e.to_string())?;
    emails.clear().await.map_err(|e| e.to_string())?;
    emails
        .send_keys("accounting@example.org\nit@example.org")
        .await
        .map_err(|e| e.to_string())?;
    click(client, "#save-alerts").await?;
    arrive(
        client,
        &format!("/portal/accounts/{account}"),
        Some("saved=alerts"),
    )
    .await?;
    let stored = sc.db.store.account(account).map_err(|e| e.to_string())?;
    check(
        stored.alerts.threshold == Credits::whole(15).map_err(|e| e.to_string())?
            && stored.alerts.recipients.len() == 2,
        format!("stored alerts {:?}", stored.alerts),
    )?;

    // 6. The CSV, downloaded by the browser.
    click(client, "#csv-link").await?;
    let started = Instant::now();
    let file = loop {
        let found = std::fs::read_dir(downloads)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"));
        if let Some(f) = found {
            break f;
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err("the CSV was not downloaded within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let csv = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let rows: Vec<&str> = csv.lines().collect();
    let journal_len = sc
        .db
        .store
        .journal(account, None, 1000)
        .map_err(|e| e.to_string())?
        .len();
    check(
        rows.first() == Some(&"seq,time_utc,kind,description,amount,balance_after"),
        format!("header: {csv}"),
    )?;
    check(
        rows.len() == journal_len + 1,
        format!("{} rows for {journal_len} entries", rows.len() - 1),
    )?;
    check(
        rows[1].contains(",grant,") && rows[1].ends_with(",90,90"),
        format!("first row {}", rows[1]),
    )?;
    let last = rows.last().copied().unwrap_or_default();
    check(
        last.contains(&format!(",topup,Order #{order}: Standard,100,"))
            && last.ends_with(&expected_text_balance(sc, account)?),
        format!("last row {last}"),
    )?;
    check(
        csv.contains("SMS campaign «Week 1» (3 recipients)"),
        "captures in the CSV",
    )?;

    // 7. Screenshots of the account page, desktop and phone, for a person to look at.
    client
        .goto(&format!("{}/portal/accounts/{account}", sc.base))
        .await
        .map_err(|e| e.to_string())?;
    screenshot(client, 1280, 2900, "portal-account.png").await?;
    screenshot(client, 390, 4200, "portal-account-phone.png").await?;

    // 8. French, with the switch.
    // The page comes back at the same URL: wait for its French text.
    click(client, "a[hreflang=fr]").await?;
    let started = Instant::now();
    loop {
        let label = text(client, ".figure.main .label")
            .await
            .unwrap_or_default();
        if label == "Disponible" {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("French label {label:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 9. The provider's side, signed in with the service key (in French, as chosen).
    client
        .goto(&format!("{}/portal/provider/login", sc.base))
        .await
        .map_err(|e| e.to_string())?;
    let key = client
        .find(Locator::Css("#key"))
        .await
        .map_err(|e| e.to_string())?;
    key.send_keys("key-sms").await.map_err(|e| e.to_string())?;
    click(client, "form[action='/portal/provider/login'] button").await?;
    arrive(client, "/portal/provider", None).await?;
    let usage = text(client, "#usage").await?;
    check(
        usage.contains("8f3c2a10-6d4e-4b1f-9a7c-2e5d6f8a9b0c") && usage.contains("40,00 EUR"),
        format!("provider figures: {usage}"),
    )?;
    screenshot(client, 1280, 1500, "portal-provider.png").await
}

/// The balance the account ends with, as the CSV writes it.
fn expected_text_balance(sc: &Sidecar, account: AccountId) -> Result<String, String> {
    Ok(sc
        .db
        .store
        .balance(account)
        .map_err(|e| e.to_string())?
        .balance
        .to_string())
}
