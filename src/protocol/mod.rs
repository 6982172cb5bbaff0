//! Odoo's IAP wire protocol: JSON-RPC 2.0 over POST at the origin root, answered so that
//! the stock `iap` addon (16–19) and providers using its helpers work unchanged.
//!
//! Every outcome is HTTP 200: Odoo turns any other status into a generic failure, and
//! reads `error.data.name` to recognise insufficient credit.

mod client;
mod error;
mod params;
mod provider;
mod sms;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

pub use error::{RpcError, Shortfall};
use params::Params;

use crate::http::AppState;
use crate::store::Store;
use crate::telemetry::METRICS;

/// What a protocol handler can use.
pub struct Ctx {
    pub store: Store,
    /// This sidecar's public origin, without a trailing slash.
    pub public_url: String,
    pub rules: crate::usecase::contact::Rules,
    pub sms: std::sync::Arc<crate::http::SmsState>,
    /// When the caller stops waiting (`database.call_deadline_ms` from the request's
    /// arrival): a write not committed by then is not applied.
    pub deadline: std::time::Instant,
}

impl Ctx {
    /// Where Odoo sends users to buy credits.
    pub fn credit_url(&self) -> String {
        format!("{}/iap/1/credit", self.public_url)
    }
}

#[derive(Clone, Copy)]
enum Handler {
    /// Runs on a blocking thread (it reads or writes the database).
    Blocking(fn(&Ctx, Map<String, Value>) -> Result<Value, RpcError>),
    /// A provider call, answered without a blocking thread when it can be.
    Provider(provider::Call),
}

/// Routes, by path; the JSON-RPC `method` member is not used (Odoo always sends "call").
const ROUTES: &[(&str, Handler)] = &[
    (
        "/iap/1/authorize",
        Handler::Provider(provider::Call::Authorize),
    ),
    ("/iap/1/capture", Handler::Provider(provider::Call::Capture)),
    ("/iap/1/cancel", Handler::Provider(provider::Call::Cancel)),
    ("/iap/1/balance", Handler::Blocking(client::balance)),
    (
        "/iap/1/get-accounts-information",
        Handler::Blocking(client::accounts_information),
    ),
    (
        "/iap/1/update-warning-email-alerts",
        Handler::Blocking(client::update_warning_email_alerts),
    ),
    (
        "/iap/services-token",
        Handler::Blocking(client::services_token),
    ),
    (
        "/iap/update-warning-odoo",
        Handler::Blocking(client::update_warning_odoo),
    ),
    // Odoo's SMS (`sms.endpoint` pointed here); an early 17.0 sent to `/iap/sms/3/send`.
    ("/api/sms/3/send", Handler::Blocking(sms::send)),
    ("/iap/sms/3/send", Handler::Blocking(sms::send)),
    ("/api/sms/1/account/create", Handler::Blocking(sms::create)),
    ("/api/sms/2/account/verify", Handler::Blocking(sms::verify)),
    (
        "/api/sms/1/account/update_sender",
        Handler::Blocking(sms::update_sender),
    ),
];

/// Registers the protocol routes at the root of the origin.
pub fn routes(cfg: &mut web::ServiceConfig) {
    sms::routes(cfg);
    for &(path, handler) in ROUTES {
        cfg.route(
            path,
            web::route().to(
                move |req: HttpRequest, body: web::Payload, state: web::Data<AppState>| {
                    dispatch(req, body, state, path, handler)
                },
            ),
        );
    }
}

fn answer(id: Value, outcome: Result<Value, RpcError>) -> HttpResponse {
    let body = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    };
    HttpResponse::Ok().json(body)
}

/// Reads the body, at most `limit` bytes.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, RpcError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| RpcError::Invalid(format!("could not read the request: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(RpcError::Invalid(format!(
                "the request body is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Splits a JSON-RPC request into its id and params.
fn envelope(body: &[u8]) -> Result<(Value, Map<String, Value>), (Value, RpcError)> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        (
            Value::Null,
            RpcError::Invalid(format!("the body is not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut request) = value else {
        return Err((
            Value::Null,
            RpcError::Invalid("the body must be a JSON-RPC request object".into()),
        ));
    };
    let id = request.remove("id").unwrap_or(Value::Null);
    match request.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => {
            return Err((id, RpcError::Invalid("\"jsonrpc\" must be \"2.0\"".into())));
        }
    }
    match request.remove("params") {
        Some(Value::Object(params)) => Ok((id, params)),
        None | Some(Value::Null) => {
            Err((id, RpcError::Invalid("missing \"params\" object".into())))
        }
        Some(_) => Err((id, RpcError::Invalid("\"params\" must be an object".into()))),
    }
}

async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: &'static str,
    handler: Handler,
) -> HttpResponse {
    let arrived = std::time::Instant::now();
    if req.method() != actix_web::http::Method::POST {
        return answer(
            Value::Null,
            Err(RpcError::Invalid(format!(
                "{path} takes a JSON-RPC POST request"
            ))),
        );
    }
    let body = match read_body(payload, state.settings.http.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return answer(Value::Null, Err(e)),
    };
    let (id, params) = match envelope(&body) {
        Ok(parts) => parts,
        Err((id, e)) => return answer(id, Err(e)),
    };
    // Keyless routes are limited per client address; providers are known by their key.
    if let Handler::Blocking(_) = handler
        && let Err(limited) = state.limiter.check(&req)
    {
        return answer(
            id,
            Err(RpcError::RateLimited {
                retry_after_secs: limited.retry_after_secs,
            }),
        );
    }
    let ctx = Ctx {
        store: state.store.clone(),
        public_url: state.public_url.clone(),
        rules: crate::usecase::contact::Rules::from_settings(&state.settings.limits),
        sms: state.sms.clone(),
        deadline: arrived
            + std::time::Duration::from_millis(state.settings.database.call_deadline_ms),
    };
    let outcome = match handler {
        Handler::Blocking(handler) => blocking(move || handler(&ctx, params)).await,
        Handler::Provider(call) => call.run(ctx, params).await,
    };
    if let Err(e) = &outcome {
        METRICS
            .iap_errors
            .with_label_values(&[path, e.name().rsplit('.').next().unwrap_or("")])
            .inc();
        tracing::info!(route = path, error = e.name(), detail = %e.message(), "refused");
    }
    answer(id, outcome)
}

/// Runs a handler on a blocking thread.
async fn blocking<F>(handler: F) -> Result<Value, RpcError>
where
    F: FnOnce() -> Result<Value, RpcError> + Send + 'static,
{
    match web::block(handler).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "protocol handler failed");
            Err(RpcError::Unavailable)
        }
    }
}

/// Parses params for a route that accepts `allowed`.
fn params(map: Map<String, Value>, allowed: &[&str]) -> Result<Params, RpcError> {
    Params::new(map, allowed)
}
