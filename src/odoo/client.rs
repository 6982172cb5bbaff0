//! Client for Odoo's external API: `/jsonrpc` (`common` and `object` services, every
//! series) and Odoo 19's JSON-2 (`/json/2/<model>/<method>`), chosen per server by
//! [`OdooClient::login`].

use std::time::Duration;

use serde_json::{Value, json};

use super::target::{RefusedTarget, TargetPolicy};
use crate::config::Secret;

/// Why a call to Odoo failed.
#[derive(Debug, thiserror::Error)]
pub enum OdooError {
    #[error("Odoo at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Odoo at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("Odoo answered HTTP {status}")]
    Http { status: u16 },
    #[error("Odoo's answer is not JSON-RPC: {0}")]
    Protocol(String),
    /// An exception raised by Odoo: `error.data.name` and `error.data.message`.
    #[error("{name}: {message}")]
    Server { name: String, message: String },
    #[error("Odoo refused the login {login} with this API key on database {db}")]
    Authentication { login: String, db: String },
    /// The URL's host is, or resolves to, an internal address that is not allowed.
    #[error("{0}")]
    Refused(String),
}

/// The policy's refusal behind a failed request, if that is why it failed.
fn refused_target(error: &reqwest::Error) -> Option<&RefusedTarget> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedTarget>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

impl OdooError {
    /// Worth another try for a read (the network, not Odoo's verdict).
    fn transient(&self) -> bool {
        matches!(
            self,
            OdooError::Unreachable { .. }
                | OdooError::Timeout { .. }
                | OdooError::Http { status: 502..=504 }
        )
    }
}

/// How the sidecar calls a database's models; stored per registered database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OdooProtocol {
    /// Odoo 19's `POST /json/2/<model>/<method>`: named arguments, the API key as a
    /// bearer token, the database in `X-Odoo-Database`.
    Json2,
    /// `POST /jsonrpc`: every series; Odoo 19 logs a deprecation warning for each call
    /// and announced its removal.
    JsonRpc,
}

impl OdooProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OdooProtocol::Json2 => "json2",
            OdooProtocol::JsonRpc => "jsonrpc",
        }
    }

    /// The stored name back; None for anything else.
    pub fn parse(name: &str) -> Option<OdooProtocol> {
        match name {
            "json2" => Some(OdooProtocol::Json2),
            "jsonrpc" => Some(OdooProtocol::JsonRpc),
            _ => None,
        }
    }
}

impl std::fmt::Display for OdooProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A logged-in session: JSON-2 carries the key on every call, `/jsonrpc` needs the uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OdooSession {
    Json2,
    JsonRpc { uid: i64 },
}

impl OdooSession {
    pub fn protocol(self) -> OdooProtocol {
        match self {
            OdooSession::Json2 => OdooProtocol::Json2,
            OdooSession::JsonRpc { .. } => OdooProtocol::JsonRpc,
        }
    }
}

/// A session on one Odoo database.
#[derive(Clone)]
pub struct OdooClient {
    http: reqwest::Client,
    url: String,
    pub db: String,
    pub login: String,
    api_key: Secret,
    timeout: Duration,
}

/// Reads are retried this many times on network failures.
const READ_ATTEMPTS: u32 = 3;

impl OdooClient {
    /// A client that reaches no internal address ([`TargetPolicy::default`]).
    pub fn new(
        url: &str,
        db: &str,
        login: &str,
        api_key: Secret,
        timeout: Duration,
    ) -> Result<OdooClient, OdooError> {
        OdooClient::with_policy(url, db, login, api_key, timeout, &TargetPolicy::default())
    }

    /// A client that connects only where `policy` allows. It follows no redirect: the
    /// URL that was checked is the only one called.
    pub fn with_policy(
        url: &str,
        db: &str,
        login: &str,
        api_key: Secret,
        timeout: Duration,
        policy: &TargetPolicy,
    ) -> Result<OdooClient, OdooError> {
        crate::tls::install_crypto_provider();
        policy.check_url(url).map_err(|host| {
            OdooError::Refused(format!(
                "{host} is an internal address; list it in odoo.allowed_hosts to allow it"
            ))
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, past the check.
            .no_proxy()
            .dns_resolver(policy.resolver())
            .build()
            .map_err(|e| OdooError::Protocol(format!("HTTP client: {e}")))?;
        Ok(OdooClient {
            http,
            url: url.trim_end_matches('/').to_owned(),
            db: db.to_owned(),
            login: login.to_owned(),
            api_key,
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One JSON-RPC call; a missing `result` (a method returning None) is `null`.
    pub async fn call(&self, service: &str, method: &str, args: Value) -> Result<Value, OdooError> {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": crate::ledger::token::random_hex(8),
        });
        let response = self
            .http
            .post(format!("{}/jsonrpc", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if let Some(refused) = refused_target(&e) {
                    OdooError::Refused(refused.to_string())
                } else if e.is_timeout() {
                    OdooError::Timeout {
                        url: self.url.clone(),
                        secs: self.timeout.as_secs(),
                    }
                } else {
                    OdooError::Unreachable {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(OdooError::Http {
                status: status.as_u16(),
            });
        }
        let mut answer: Value = response
            .json()
            .await
            .map_err(|e| OdooError::Protocol(e.to_string()))?;
        if let Some(error) = answer.get("error") {
            let data = &error["data"];
            return Err(OdooError::Server {
                name: data["name"].as_str().unwrap_or("unknown").to_owned(),
                message: data["message"]
                    .as_str()
                    .or_else(|| error["message"].as_str())
                    .unwrap_or("no message")
                    .to_owned(),
            });
        }
        Ok(answer
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// A read: retried with a short backoff when the network failed.
    async fn read(&self, service: &str, method: &str, args: Value) -> Result<Value, OdooError> {
        let mut attempt = 1;
        loop {
            match self.call(service, method, args.clone()).await {
                Err(e) if e.transient() && attempt < READ_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `common.version`: the server's version information.
    pub async fn version(&self) -> Result<Value, OdooError> {
        self.read("common", "version", json!([])).await
    }

    /// `common.authenticate`: the user id of `login` with the API key.
    pub async fn authenticate(&self) -> Result<i64, OdooError> {
        let uid = self
            .read(
                "common",
                "authenticate",
                json!([self.db, self.login, self.api_key.expose(), {}]),
            )
            .await?;
        uid.as_i64().ok_or_else(|| OdooError::Authentication {
            login: self.login.clone(),
            db: self.db.clone(),
        })
    }

    /// `object.execute_kw` for a read-only method (retried on network failures).
    pub async fn execute_read(
        &self,
        uid: i64,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, OdooError> {
        self.read(
            "object",
            "execute_kw",
            json!([
                self.db,
                uid,
                self.api_key.expose(),
                model,
                method,
                args,
                kwargs
            ]),
        )
        .await
    }

    /// One JSON-2 call, `POST /json/2/<model>/<method>` with `body` as the named
    /// arguments. A server without JSON-2 (before 19) answers 404 (or a redirect), kept as
    /// [`OdooError::Http`] so [`OdooClient::login`] can fall back to `/jsonrpc`.
    pub async fn call_json2(
        &self,
        model: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, OdooError> {
        let response = self
            .http
            .post(format!("{}/json/2/{model}/{method}", self.url))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {}", self.api_key.expose()),
            )
            .header("X-Odoo-Database", &self.db)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    OdooError::Timeout {
                        url: self.url.clone(),
                        secs: self.timeout.as_secs(),
                    }
                } else {
                    OdooError::Unreachable {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }
                }
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(OdooError::Authentication {
                login: self.login.clone(),
                db: self.db.clone(),
            });
        }
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| OdooError::Protocol(e.to_string()));
        }
        // JSON-2 errors are Odoo's serialised exception (`name`, `message`); anything
        // else (an HTML 404 of a server without JSON-2, a proxy's page) is its status.
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(error) if status != reqwest::StatusCode::NOT_FOUND && error["name"].is_string() => {
                Err(OdooError::Server {
                    name: error["name"].as_str().unwrap_or("unknown").to_owned(),
                    message: error["message"].as_str().unwrap_or("no message").to_owned(),
                })
            }
            _ => Err(OdooError::Http {
                status: status.as_u16(),
            }),
        }
    }

    /// A JSON-2 read: retried with a short backoff when the network failed.
    async fn read_json2(
        &self,
        model: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, OdooError> {
        let mut attempt = 1;
        loop {
            match self.call_json2(model, method, body).await {
                Err(e) if e.transient() && attempt < READ_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Logs in with the protocol the server has: JSON-2 where it answers (Odoo 19 and
    /// later; the call checks the API key too), `/jsonrpc` where it does not exist.
    /// JSON-2 takes API keys only: a 401 there is tried on `/jsonrpc`, which also takes
    /// the user's password, and refused only when that refuses it too.
    pub async fn login(&self) -> Result<OdooSession, OdooError> {
        match self
            .read_json2("res.users", "context_get", &json!({}))
            .await
        {
            Ok(_) => Ok(OdooSession::Json2),
            // No JSON-2: a 404, or, from Odoo 17/18 serving one database (`--db-filter`),
            // the redirect to the login page its unknown routes answer.
            Err(
                OdooError::Http {
                    status: 404 | 302 | 303 | 307,
                }
                | OdooError::Authentication { .. },
            ) => Ok(OdooSession::JsonRpc {
                uid: self.authenticate().await?,
            }),
            Err(e) => Err(e),
        }
    }

    /// A read-only model method called with named arguments, over the session's protocol
    /// (retried on network failures).
    pub async fn read_model(
        &self,
        session: OdooSession,
        model: &str,
        method: &str,
        kwargs: Value,
    ) -> Result<Value, OdooError> {
        match session {
            OdooSession::Json2 => self.read_json2(model, method, &kwargs).await,
            OdooSession::JsonRpc { uid } => {
                self.execute_read(uid, model, method, json!([]), kwargs)
                    .await
            }
        }
    }
}
