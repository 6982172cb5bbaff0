//! A generic JSON webhook, for providers with their own API or an operator's relay.
//!
//! Submit: `POST url` with
//! `{"id": uuid, "to": "+…", "from": sender|null, "text", "encoding": "gsm7"|"ucs2",
//! "segments", "callback_url"}`, headers `Idempotency-Key: <uuid>` (a relay that
//! deduplicates on it never sends a message twice, even when our retry follows a lost
//! answer) and `X-Iap-Sidecar-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - 2xx with `{"reference": "…"}`: taken.
//! - 4xx other than 408 and 429: refused; `{"failure": "<word>"}` names why (one of
//!   `expired`, `not_delivered`, `invalid_destination`, `not_allowed`, `rejected`; default
//!   `rejected`).
//! - anything else, or no answer within `timeout_secs`: tried again later.
//!
//! Callback: `POST /sms/receipts/NAME`, the same signature header over the body, which is
//! one receipt or a list of them: `{"reference", "status": "sent"|"delivered"|<failure
//! word>, "detail"?}`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Callback, CallbackError, Context, Gateway, Outgoing, Receipt, SubmitError, Submitted};
use crate::secret::Secret;
use crate::sms::status::{Delivery, Failure};

/// `[sms.gateways.NAME]` with `kind = "webhook"`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where messages are posted (the operator's; not checked against internal
    /// addresses: the operator chose it).
    pub url: String,
    /// Signs both directions; at least 32 characters.
    pub secret: Secret,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

pub const SIGNATURE_HEADER: &str = "x-iap-sidecar-signature";

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct WebhookGateway {
    url: String,
    secret: Secret,
    timeout: Duration,
    callback_url: String,
    http: reqwest::Client,
}

impl WebhookGateway {
    pub fn new(settings: &WebhookSettings, cx: Context) -> Result<WebhookGateway, String> {
        if settings.secret.expose().len() < 32 {
            return Err(format!(
                "sms.gateways.{}.secret must be at least 32 characters",
                cx.name
            ));
        }
        reqwest::Url::parse(&settings.url)
            .map_err(|e| format!("sms.gateways.{}.url: {e}", cx.name))?;
        Ok(WebhookGateway {
            url: settings.url.clone(),
            secret: settings.secret.clone(),
            timeout: Duration::from_secs(settings.timeout_secs.max(1)),
            callback_url: cx.callback_url(),
            http: cx.http,
        })
    }

    async fn post(&self, message: &Outgoing) -> Result<Submitted, SubmitError> {
        let body = json!({
            "id": message.uuid,
            "to": message.to,
            "from": message.sender,
            "text": message.text,
            "encoding": message.encoding.as_str(),
            "segments": message.segments,
            "callback_url": self.callback_url,
        })
        .to_string();
        let response = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("idempotency-key", &message.uuid)
            .header(
                SIGNATURE_HEADER,
                signature(self.secret.expose(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| SubmitError::Transient(format!("webhook unreachable: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            let reference = answer
                .get("reference")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty() && r.len() <= 128)
                .ok_or_else(|| {
                    SubmitError::Transient("webhook answered without a \"reference\"".into())
                })?;
            return Ok(Submitted {
                gateway_ref: reference.to_owned(),
            });
        }
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            let failure = answer
                .get("failure")
                .and_then(Value::as_str)
                .and_then(Failure::parse)
                .unwrap_or(Failure::Rejected);
            return Err(SubmitError::Refused {
                failure,
                reason: format!("webhook answered {status}"),
            });
        }
        Err(SubmitError::Transient(format!("webhook answered {status}")))
    }
}

/// One receipt as the webhook posts it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    reference: String,
    status: String,
    #[serde(default)]
    detail: Option<String>,
}

fn receipt(posted: Posted) -> Result<Receipt, CallbackError> {
    let delivery = match posted.status.as_str() {
        "sent" => Delivery::Sent,
        "delivered" => Delivery::Delivered,
        other => Delivery::Failed(
            Failure::parse(other)
                .ok_or_else(|| CallbackError::Invalid(format!("unknown status {other:?}")))?,
        ),
    };
    if posted.reference.is_empty() || posted.reference.len() > 128 {
        return Err(CallbackError::Invalid(
            "\"reference\" must be 1 to 128 characters".into(),
        ));
    }
    Ok(Receipt {
        gateway_ref: posted.reference,
        delivery,
        detail: posted.detail.map(|d| d.chars().take(200).collect()),
    })
}

impl Gateway for WebhookGateway {
    fn submit<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Submitted, SubmitError>> {
        Box::pin(self.post(message))
    }

    fn read_callback(&self, callback: &Callback<'_>) -> Result<Vec<Receipt>, CallbackError> {
        let given = callback.signature(SIGNATURE_HEADER)?;
        let expected = signature(self.secret.expose(), callback.body);
        Callback::check_signature(given, &expected)?;
        let value: Value = serde_json::from_slice(callback.body)
            .map_err(|e| CallbackError::Invalid(format!("not JSON: {e}")))?;
        let posted: Vec<Posted> = match value {
            Value::Array(_) => serde_json::from_value(value),
            _ => serde_json::from_value(value).map(|one| vec![one]),
        }
        .map_err(|e| CallbackError::Invalid(format!("not a receipt: {e}")))?;
        posted.into_iter().map(receipt).collect()
    }
}
