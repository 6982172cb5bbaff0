//! A minimal browser for the portal tests: real HTTP, a cookie jar, no automatic
//! redirects (so each 303 and its `Location` can be checked), and the webhook signer.

use std::cell::RefCell;
use std::collections::BTreeMap;

use iap_sidecar::config::{Secret, Settings};
use iap_sidecar::ledger::token::sha256_hex;
use iap_sidecar::ledger::{Credits, Service};
use iap_sidecar::payments::webhook;
use iap_sidecar::payments::{PackInput, Price};
use iap_sidecar::store::NewService;

use crate::rpc::Sidecar;
use crate::support::Backend;

pub const WEBHOOK_SECRET: &str = "whsec_portal_tests_0123456789";

/// One answer.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The body, failing the test unless the status is `status`.
    pub fn expect(&self, status: u16, what: &str) -> &str {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        &self.body
    }
}

/// A cookie-keeping client of one sidecar.
pub struct Web {
    pub base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    pub cookies: RefCell<BTreeMap<String, String>>,
    pub accept_language: Option<&'static str>,
}

impl Web {
    pub fn new(base: &str) -> Web {
        Web {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            cookies: RefCell::new(BTreeMap::new()),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        let cookies = self.cookie_header();
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        if let Some(lang) = self.accept_language {
            request = request.header("accept-language", lang);
        }
        self.rt.block_on(async {
            let r = request.send().await.expect("request sent");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let location = headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let set_cookies: Vec<String> = headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect();
            for c in &set_cookies {
                let pair = c.split(';').next().unwrap_or_default();
                if let Some((k, v)) = pair.split_once('=') {
                    if c.contains("Max-Age=0") {
                        self.cookies.borrow_mut().remove(k);
                    } else {
                        self.cookies.borrow_mut().insert(k.to_owned(), v.to_owned());
                    }
                }
            }
            let body = r.text().await.expect("body");
            Page {
                status,
                location,
                set_cookies,
                headers,
                body,
            }
        })
    }

    pub fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    /// A GET with extra headers (e.g. the `Sec-Fetch-Site` a browser sends).
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request)
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
    }

    /// A raw POST (the webhook), with extra headers.
    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        self.send(request)
    }

    /// Follows a 303 once.
    pub fn follow(&self, page: &Page) -> Page {
        assert_eq!(page.status, 303, "expected a redirect: {}", page.body);
        let location = page.location.as_deref().expect("Location");
        self.get(location)
    }

    /// Sends a payment event signed with `secret` at `timestamp` (Unix seconds).
    pub fn webhook(&self, body: &str, secret: &str, timestamp: i64) -> Page {
        let ts = timestamp.to_string();
        let sig = webhook::sign(secret.as_bytes(), &ts, body.as_bytes());
        self.post_raw(
            "/api/v1/payments/webhook",
            body.as_bytes(),
            &[("x-iap-timestamp", ts), ("x-iap-signature", sig)],
        )
    }
}

/// The CSRF token of the first form on a page.
pub fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in: {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

/// A sidecar with the webhook configured.
pub fn sidecar(backend: &Backend) -> Result<Sidecar, String> {
    Sidecar::start_with(backend, |s: &mut Settings| {
        s.payments.webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    })
}

/// Registers `name` with key `key-{name}` and two packs (10 for 5.00 EUR, 100 for 40.00).
pub fn service_with_packs(sidecar: &Sidecar, name: &str) -> Service {
    let service = sidecar
        .db
        .store
        .create_service(
            &NewService {
                technical_name: name.to_owned(),
                label: format!("{} messages", name.to_uppercase()),
                unit_name: "credits".into(),
                integer_balance: false,
                trial_credits: Credits::ZERO,
                trial_days: 0,
            },
            &sha256_hex(&format!("key-{name}")),
        )
        .expect("service");
    for (pack, credits, price) in [("Starter", 10, "5"), ("Standard", 100, "40")] {
        sidecar
            .db
            .store
            .create_pack(
                service.id,
                &PackInput {
                    name: pack.into(),
                    credits: Credits::whole(credits).expect("credits"),
                    price: Price::parse(price, "EUR").expect("price"),
                    active: true,
                },
            )
            .expect("pack");
    }
    service
}

/// The manual clock in Unix seconds (what webhook timestamps are compared with).
pub fn now_secs(sidecar: &Sidecar) -> i64 {
    sidecar.db.now().micros() / 1_000_000
}
