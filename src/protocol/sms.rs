//! Odoo's SMS routes (`sms-protocol.md`): the send call, the account registration of
//! 18/19, the "Register now" page, and the gateways' receipt callbacks.
//!
//! The send call answers every uuid inside a successful result, refusals included: any
//! JSON-RPC error turns Odoo's whole batch into "Server Error". A JSON-RPC error is kept
//! for what changed nothing at all: a malformed or oversized call, or a database that
//! could not take the call before its deadline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::error::RpcError;
use super::provider::account_token;
use super::{Ctx, params};
use crate::http::AppState;
use crate::ledger::token::AccountToken;
use crate::sms::gateway::{Callback, CallbackError};
use crate::sms::status::SendState;
use crate::usecase::sms::{self as usecase, SendCall, SendGroup, SmsError};

/// Longest SMS text accepted (Odoo's composer has no limit; gateways take about 1,600
/// characters, Twilio exactly 1,600).
const MAX_CONTENT: usize = 1600;

fn invalid(message: impl Into<String>) -> RpcError {
    RpcError::Invalid(message.into())
}

/// Odoo's uuids: `uuid4().hex`, which `/sms/status` also demands.
fn valid_uuid(uuid: &str) -> bool {
    uuid.len() == 32 && uuid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn group(item: &Value) -> Result<SendGroup, RpcError> {
    let Value::Object(map) = item else {
        return Err(invalid("each item of \"messages\" must be an object"));
    };
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "content" | "numbers"))
    {
        return Err(invalid(format!(
            "unknown key {extra:?} in an item of \"messages\""
        )));
    }
    let content = match map.get("content") {
        Some(Value::String(s)) if s.chars().count() <= MAX_CONTENT => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid(format!(
                "an SMS text is longer than {MAX_CONTENT} characters"
            )));
        }
        _ => {
            return Err(invalid(
                "each item of \"messages\" needs \"content\" (a string)",
            ));
        }
    };
    let Some(Value::Array(numbers)) = map.get("numbers") else {
        return Err(invalid(
            "each item of \"messages\" needs \"numbers\" (a list)",
        ));
    };
    let numbers = numbers
        .iter()
        .map(|n| {
            let Value::Object(n) = n else {
                return Err(invalid("each item of \"numbers\" must be an object"));
            };
            if let Some(extra) = n.keys().find(|k| !matches!(k.as_str(), "uuid" | "number")) {
                return Err(invalid(format!(
                    "unknown key {extra:?} in an item of \"numbers\""
                )));
            }
            let uuid = match n.get("uuid") {
                Some(Value::String(u)) if valid_uuid(u) => u.clone(),
                _ => {
                    return Err(invalid(
                        "each number needs \"uuid\": 32 lowercase hexadecimal characters",
                    ));
                }
            };
            // Odoo sends False or nothing for a partner without a phone.
            let number = match n.get("number") {
                None | Some(Value::Null) | Some(Value::Bool(false)) => None,
                Some(Value::String(s)) if s.len() <= 64 => Some(s.clone()),
                _ => {
                    return Err(invalid(
                        "\"number\" must be a string of at most 64 characters",
                    ));
                }
            };
            Ok((uuid, number))
        })
        .collect::<Result<Vec<_>, RpcError>>()?;
    Ok(SendGroup { content, numbers })
}

fn webhook_url(raw: Option<&str>) -> Result<Option<&str>, RpcError> {
    match raw {
        Some(url)
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.contains(char::is_whitespace) =>
        {
            Err(invalid("\"webhook_url\" must be an http(s) URL"))
        }
        other => Ok(other),
    }
}

/// `/api/sms/3/send` (and `/iap/sms/3/send`).
pub fn send(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["messages", "webhook_url", "dbuuid", "account_token"])?;
    let token = account_token(p.text("account_token", 256)?)?;
    let dbuuid = p.opt_text("dbuuid", 64)?;
    let webhook_url = webhook_url(p.opt_text("webhook_url", 2000)?)?;
    let max = ctx.sms.rules.max_batch;
    let groups = p
        .list("messages", max)?
        .iter()
        .map(group)
        .collect::<Result<Vec<_>, RpcError>>()?;
    let call = SendCall {
        token: &token,
        dbuuid,
        webhook_url,
        groups,
    };
    let results =
        usecase::send(&ctx.store, &ctx.sms.rules, &call, ctx.deadline).map_err(|e| match e {
            SmsError::TooLarge { .. } => invalid(e.to_string()),
            SmsError::Ledger(e) => RpcError::from(e),
        })?;
    if results.iter().any(|r| r.state == SendState::Success) {
        ctx.sms.wake.notify_one();
    }
    Ok(Value::Array(
        results
            .into_iter()
            .map(
                |r| json!({"uuid": r.uuid, "state": r.state.as_str(), "credit": r.credit.to_f64()}),
            )
            .collect(),
    ))
}

fn registration_params<'a>(
    p: &'a super::params::Params,
    field: &str,
) -> Result<(AccountToken, &'a str), RpcError> {
    let token = account_token(p.text("account_token", 256)?)?;
    let value = p.text(field, 64)?;
    Ok((token, value))
}

/// `/api/sms/1/account/create`: a verification code to the phone.
pub fn create(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["phone_number", "account_token", "dbuuid"])?;
    let (token, phone) = registration_params(&p, "phone_number")?;
    let answer = usecase::register_phone(&ctx.store, &ctx.sms.rules, &token, phone)?;
    if answer == usecase::RegistrationAnswer::Success {
        ctx.sms.wake.notify_one();
    }
    Ok(json!({"state": answer.as_str()}))
}

/// `/api/sms/2/account/verify`: the code the user received.
pub fn verify(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["code", "account_token", "dbuuid"])?;
    let (token, code) = registration_params(&p, "code")?;
    let answer = usecase::verify_code(&ctx.store, &ctx.sms.rules, &token, code)?;
    Ok(json!({"state": answer.as_str()}))
}

/// `/api/sms/1/account/update_sender`: the sender name, once.
pub fn update_sender(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["sender_name", "account_token", "dbuuid"])?;
    let (token, name) = registration_params(&p, "sender_name")?;
    let answer = usecase::set_sender(&ctx.store, &ctx.sms.rules, &token, name)?;
    Ok(json!({"state": answer.as_str()}))
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sms/receipts/{gateway}", web::post().to(receipts))
        .route("/1/account", web::get().to(register_page));
}

fn plain(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message}))
}

/// A provider's receipt callback: checked by the gateway's own rule (signature), then
/// recorded. An unknown reference is answered 200 and changes nothing: the provider must
/// not retry it forever.
async fn receipts(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let name = path.into_inner();
    let Some(gateway) = state.sms.gateways.get(&name).cloned() else {
        return plain(StatusCode::NOT_FOUND, "no such gateway");
    };
    let url = format!("{}/sms/receipts/{name}", state.public_url);
    let read = gateway.read_callback(&Callback {
        url: &url,
        headers: req.headers(),
        body: &body,
    });
    let receipts = match read {
        Ok(receipts) => receipts,
        Err(e) => {
            // Only refused callbacks count against the address: a provider's legitimate
            // bursts (one callback per message) are not limited.
            if let Err(limited) = state.limiter.check(&req) {
                return HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", limited.retry_after_secs.to_string()))
                    .json(json!({"error": "too many refused callbacks"}));
            }
            let status = match e {
                CallbackError::BadSignature => StatusCode::FORBIDDEN,
                CallbackError::Invalid(_) => StatusCode::BAD_REQUEST,
                CallbackError::NotSupported => StatusCode::NOT_FOUND,
            };
            tracing::info!(gateway = %name, error = %e, "SMS receipt refused");
            return plain(status, &e.to_string());
        }
    };
    let store = state.store.clone();
    let recorded = web::block(move || {
        let mut counts = (0usize, 0usize, 0usize);
        for receipt in &receipts {
            match usecase::record_receipt(&store, &name, receipt)? {
                usecase::ReceiptOutcome::Applied => counts.0 += 1,
                usecase::ReceiptOutcome::AlreadyKnown => counts.1 += 1,
                usecase::ReceiptOutcome::Unknown => counts.2 += 1,
            }
        }
        Ok::<_, crate::ledger::LedgerError>(counts)
    })
    .await;
    match recorded {
        Ok(Ok((applied, known, unknown))) => {
            if applied > 0 {
                state.sms.wake.notify_one();
            }
            HttpResponse::Ok().json(json!({"applied": applied, "known": known, "unknown": unknown}))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "SMS receipt not recorded");
            plain(StatusCode::SERVICE_UNAVAILABLE, "not recorded; retry later")
        }
        Err(e) => {
            tracing::warn!(error = %e, "SMS receipt task failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, "not recorded; retry later")
        }
    }
}

#[derive(serde::Deserialize)]
struct RegisterQuery {
    account_token: Option<String>,
}

/// `<sms.endpoint>/1/account?account_token=…`, Odoo's "Register now" link: the portal's
/// page for that SMS account, where credits are bought (Odoo 19 puts the raw token here,
/// not URL-encoded, so a `+disabled` arrives as ` disabled`).
async fn register_page(
    query: web::Query<RegisterQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let token = query
        .account_token
        .as_deref()
        .map(|t| t.trim().replace(' ', "+"))
        .unwrap_or_default();
    let target = format!(
        "/iap/1/credit?{}",
        serde_urlencoded::to_string([
            ("service_name", state.sms.rules.service.as_str()),
            ("account_token", token.as_str()),
        ])
        .unwrap_or_default()
    );
    HttpResponse::SeeOther()
        .insert_header(("Location", target))
        .finish()
}
