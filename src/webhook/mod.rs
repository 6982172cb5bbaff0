//! The payment provider's face: `POST /api/v1/payments/webhook`, a signed event (payment
//! succeeded or failed) applied once. The signature and the event's shape are checked by
//! `payments::webhook`; crediting is the store's `apply_payment_event`, one transaction.
//! Its refusals are problem JSON through the API's `ApiError`, like the rest of `/api/v1`,
//! whose scope mounts this route (it needs no admin token: the signature is the key).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::dto::OrderDto;
use crate::http::problem::{ApiError, Problem};
use crate::payments::webhook::{self, Event, WebhookError};

/// What the webhook did with an event.
#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    pub order: OrderDto,
    /// This event id was already received with this body: nothing was done again.
    pub duplicate: bool,
    /// This event credited the order.
    pub credited_now: bool,
}

/// A payment event, signed: `X-IAP-Timestamp` (Unix seconds) and `X-IAP-Signature:
/// sha256=<hex HMAC-SHA256(payments.webhook_secret, "<timestamp>.<raw body>")>`. Events
/// older than `payments.webhook_tolerance_secs` are refused; an event id is applied once.
#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "orders",
    request_body(content = String, description = r#"{"id": "evt_1", "type": "payment.succeeded" | "payment.failed", "order_id": 1, "amount_minor": 1000, "currency": "EUR", "reference": "optional"}"#),
    params(("X-IAP-Timestamp" = String, Header), ("X-IAP-Signature" = String, Header)),
    responses((status = 200, body = WebhookResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "amount or currency differ from the order")),
    security(()))]
pub async fn payment_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let settings = &state.settings.payments;
    let secret = settings
        .webhook_secret
        .as_ref()
        .ok_or(WebhookError::NotConfigured)?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    webhook::verify(
        secret.expose().as_bytes(),
        header(webhook::TIMESTAMP_HEADER),
        header(webhook::SIGNATURE_HEADER),
        &body,
        state.store.now().micros().div_euclid(1_000_000),
        settings.webhook_tolerance_secs,
    )
    .map_err(WebhookError::Verify)?;
    let event = Event::parse(&body).map_err(WebhookError::BadEvent)?;
    let body_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let outcome = state
        .run(move |s| s.apply_payment_event(&event, &body_hash))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse {
        order: outcome.order.into(),
        duplicate: outcome.duplicate,
        credited_now: outcome.credited_now,
    }))
}
