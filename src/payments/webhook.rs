//! The payment webhook: `POST /api/v1/payments/webhook`, signed by the payment provider
//! (or the adapter in front of it) with the shared `payments.webhook_secret`.
//!
//! Headers: `X-IAP-Timestamp: <unix seconds>` and
//! `X-IAP-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
//! Signing the timestamp with the body lets a captured request be replayed only within
//! the tolerance window, and the event id (stored once) makes even that harmless.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::OrderId;

pub const TIMESTAMP_HEADER: &str = "x-iap-timestamp";
pub const SIGNATURE_HEADER: &str = "x-iap-signature";
/// Requests older (or newer) than this are refused, in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a webhook request is refused before anything is looked up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing X-IAP-Timestamp or X-IAP-Signature header")]
    Missing,
    #[error("X-IAP-Timestamp must be Unix seconds")]
    BadTimestamp,
    #[error("timestamp is more than {0} seconds away from the server's time")]
    Stale(i64),
    #[error("signature does not match")]
    BadSignature,
}

/// Why a webhook request was refused before its event reached the orders; the admin
/// face answers it as problem JSON like the rest of the API.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the payment webhook is not configured (payments.webhook_secret)")]
    NotConfigured,
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    BadEvent(String),
}

impl WebhookError {
    /// A stable machine-readable name, used in problem types.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::NotConfigured => "webhook_not_configured",
            WebhookError::Verify(VerifyError::Missing) => "missing_signature",
            WebhookError::Verify(VerifyError::BadTimestamp) => "bad_timestamp",
            WebhookError::Verify(VerifyError::Stale(_)) => "stale_timestamp",
            WebhookError::Verify(VerifyError::BadSignature) => "bad_signature",
            WebhookError::BadEvent(_) => "invalid_event",
        }
    }
}

/// `sha256=<hex>` for `body` sent at `timestamp`: what a sender puts in `X-IAP-Signature`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks the headers of a webhook request against `secret` at `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(VerifyError::Missing);
    };
    let timestamp = timestamp.trim();
    let sent: i64 = timestamp
        .parse()
        .ok()
        .filter(|_| !timestamp.is_empty() && timestamp.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(VerifyError::BadTimestamp)?;
    // The signature is checked before the age so a forger learns nothing from the answer.
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignature)?;
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| VerifyError::BadSignature)?;
    if (now_secs - sent).abs() > tolerance_secs {
        return Err(VerifyError::Stale(tolerance_secs));
    }
    Ok(())
}

/// What a payment event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum EventKind {
    /// The order is paid: credit it.
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    /// The payment failed or was abandoned: cancel the order if still pending.
    #[serde(rename = "payment.failed")]
    Failed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Succeeded => "payment.succeeded",
            EventKind::Failed => "payment.failed",
        }
    }
}

/// The JSON body of a webhook request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Unique per event: a second delivery of the same id changes nothing.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub order_id: OrderId,
    /// What was paid, in minor units: must equal the order's price.
    pub amount_minor: i64,
    pub currency: String,
    /// The provider's payment id, kept on the order.
    #[serde(default)]
    pub reference: Option<String>,
}

impl Event {
    /// Parses and checks the body (after the signature was verified).
    pub fn parse(body: &[u8]) -> Result<Event, String> {
        let event: Event =
            serde_json::from_slice(body).map_err(|e| format!("invalid event JSON: {e}"))?;
        let printable =
            |s: &str| !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control);
        if !printable(&event.id) {
            return Err("\"id\" must be 1-200 printable characters".into());
        }
        if event.reference.as_deref().is_some_and(|r| !printable(r)) {
            return Err("\"reference\" must be 1-200 printable characters".into());
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_signed_fresh_request_passes() {
        let body = br#"{"id":"evt_1"}"#;
        let sig = sign(SECRET, "1000", body);
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), body, 1100, 300),
            Ok(())
        );
    }

    #[test]
    fn altered_stale_or_unsigned_requests_fail() {
        let body = br#"{"id":"evt_1"}"#;
        let sig = sign(SECRET, "1000", body);
        assert_eq!(
            verify(
                SECRET,
                Some("1000"),
                Some(&sig),
                br#"{"id":"evt_2"}"#,
                1000,
                300
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("1001"), Some(&sig), body, 1000, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"other", Some("1000"), Some(&sig), body, 1000, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), body, 1301, 300),
            Err(VerifyError::Stale(300))
        );
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), body, 699, 300),
            Err(VerifyError::Stale(300))
        );
        assert_eq!(
            verify(SECRET, None, Some(&sig), body, 1000, 300),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify(SECRET, Some("-5"), Some(&sig), body, 1000, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(SECRET, Some("1000"), Some("sha256=zz"), body, 1000, 300),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn events_are_checked() {
        let ok = br#"{"id":"evt_1","type":"payment.succeeded","order_id":3,"amount_minor":900,"currency":"EUR"}"#;
        assert_eq!(
            Event::parse(ok).expect("event").order_id,
            OrderId::from_stored(3)
        );
        assert!(Event::parse(br#"{"id":"","type":"payment.succeeded","order_id":3,"amount_minor":900,"currency":"EUR"}"#).is_err());
        assert!(
            Event::parse(
                br#"{"id":"e","type":"refund","order_id":3,"amount_minor":900,"currency":"EUR"}"#
            )
            .is_err()
        );
        assert!(Event::parse(br#"{"id":"e","type":"payment.failed","order_id":3,"amount_minor":900,"currency":"EUR","x":1}"#).is_err());
    }
}
