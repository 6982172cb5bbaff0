//! A whole sidecar on a test database, reached over real HTTP, and a JSON-RPC client that
//! posts exactly what Odoo's `iap_jsonrpc` posts.

use iap_sidecar::config::Settings;
use iap_sidecar::ledger::token::sha256_hex;
use iap_sidecar::ledger::{Credits, Service};
use iap_sidecar::store::NewService;
use serde_json::{Value, json};

use crate::support::{Backend, DbOptions, TestDb};

pub const INSUFFICIENT: &str = "odoo.addons.iap.tools.iap_tools.InsufficientCreditError";

/// A running server on its own database (manual clock), stopped on drop.
pub struct Sidecar {
    pub db: TestDb,
    pub base: String,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    rt: tokio::runtime::Runtime,
}

/// One JSON-RPC answer.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `result`, failing the test on an error answer.
    pub fn result(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert!(
            self.body.get("error").is_none(),
            "unexpected error: {}",
            self.body
        );
        self.body.get("result").unwrap_or(&Value::Null)
    }

    /// `(error.data.name, error.data.message)`, failing the test on a success answer or
    /// on an error Odoo's client could not read.
    pub fn error(&self) -> (String, String) {
        assert_eq!(
            self.status, 200,
            "JSON-RPC errors travel with HTTP 200: {}",
            self.body
        );
        let data = &self.body["error"]["data"];
        let name = data["name"].as_str();
        let message = data["message"].as_str();
        match (name, message) {
            (Some(n), Some(m)) if !n.is_empty() && !m.is_empty() => (n.to_owned(), m.to_owned()),
            _ => panic!(
                "expected an error with data.name and data.message: {}",
                self.body
            ),
        }
    }
}

impl Sidecar {
    pub fn start(backend: &Backend) -> Result<Sidecar, String> {
        Sidecar::start_with(backend, |_| {})
    }

    pub fn start_with(
        backend: &Backend,
        tweak: impl FnOnce(&mut Settings),
    ) -> Result<Sidecar, String> {
        let db = TestDb::new(backend, DbOptions::pool(4))?;
        let mut settings = Settings::default();
        // In compose, Odoo runs in another container: listen on all interfaces there and
        // give Odoo the test container's name.
        let advertise = std::env::var("IAP_SIDECAR_TEST_ADVERTISE_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        match &advertise {
            Some(host) => {
                // The buy-credits links must name the advertised host: pick the port first.
                let port = std::net::TcpListener::bind("0.0.0.0:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| e.to_string())?
                    .port();
                settings.http.bind = format!("0.0.0.0:{port}");
                settings.http.public_url = Some(format!("http://{host}:{port}"));
            }
            None => settings.http.bind = "127.0.0.1:0".into(),
        }
        settings.http.workers = Some(2);
        tweak(&mut settings);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let store = db
            .store
            .clone()
            .with_max_hold_ttl_hours(settings.ledger.max_hold_ttl_hours);
        let started = rt
            .block_on(async { iap_sidecar::app::start_with_store(settings, store) })
            .map_err(|e| format!("starting the sidecar: {e}"))?;
        let base = match &advertise {
            Some(host) => format!("http://{host}:{}", started.addr.port()),
            None => format!("http://{}", started.addr),
        };
        let handle = started.server.handle();
        rt.spawn(started.wait());
        Ok(Sidecar {
            db,
            base,
            client: reqwest::Client::new(),
            handle,
            rt,
        })
    }

    /// Posts raw bytes to `path` as JSON.
    pub fn post_bytes(&self, path: &str, body: Vec<u8>) -> Answer {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request sent");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            let body = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
            Answer { status, body }
        })
    }

    /// Posts raw bytes with extra headers; the status and the JSON answer (null if none).
    pub fn rt_post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
        self.rt.block_on(async {
            let mut request = self
                .client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let r = request.send().await.expect("request sent");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// GETs `path` with an admin bearer token; the status and the JSON answer.
    pub fn rt_get(&self, path: &str, bearer: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self
                .client
                .get(format!("{}{path}", self.base))
                .bearer_auth(bearer)
                .send()
                .await
                .expect("request sent");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// Posts a whole JSON-RPC request as given.
    pub fn post(&self, path: &str, request: &Value) -> Answer {
        self.post_bytes(path, serde_json::to_vec(request).expect("json"))
    }

    /// Posts `params` in Odoo's envelope and checks the id is echoed.
    pub fn call(&self, path: &str, params: Value) -> Answer {
        let id = iap_sidecar::ledger::token::random_hex(16);
        let answer = self.post(
            path,
            &json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": id}),
        );
        assert_eq!(
            answer.body["id"],
            json!(id),
            "id not echoed: {}",
            answer.body
        );
        assert_eq!(answer.body["jsonrpc"], "2.0");
        answer
    }

    /// Registers a service whose provider key is `key`.
    pub fn service(&self, name: &str, key: &str, trial: Option<(i64, i32)>) -> Service {
        let (trial_credits, trial_days) = trial.unwrap_or((0, 0));
        self.db
            .store
            .create_service(
                &NewService {
                    technical_name: name.to_owned(),
                    label: format!("Service {name}"),
                    unit_name: "Credits".into(),
                    integer_balance: false,
                    trial_credits: Credits::whole(trial_credits).expect("trial"),
                    trial_days,
                },
                &sha256_hex(key),
            )
            .expect("service")
    }

    /// Adds whole credits to `token`'s account for `service`.
    pub fn grant(&self, service: &Service, token: &str, credits: i64) {
        let token = iap_sidecar::ledger::token::AccountToken::from_raw(token).expect("token");
        let account = self
            .db
            .store
            .ensure_account(service.id, &token, None)
            .expect("account");
        self.db
            .store
            .grant(&iap_sidecar::store::GrantRequest {
                account_id: account.id,
                amount: Credits::whole(credits).expect("credits"),
                expires_at: iap_sidecar::ledger::time::NEVER,
                origin: iap_sidecar::ledger::EntryKind::Grant,
                reference: None,
                description: None,
            })
            .expect("grant");
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.rt.block_on(self.handle.stop(false));
    }
}
