//! Twilio's Messages API.
//!
//! Submit: `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
//! (`AccountSid:AuthToken`), form `To`, `Body`, `From` (the account's sender name, else
//! the configured number) and/or `MessagingServiceSid`, `StatusCallback` (our
//! `/sms/receipts/NAME`).
//! - 2xx with a Message resource: taken; its `sid` ties the callbacks to the message.
//! - 400 with an error code about the destination (invalid, not a mobile, unsubscribed,
//!   region not enabled…) or the text: refused (see [`refusal`]).
//! - 400 about our own configuration (sender, service, callback URL), 401, 403, 404,
//!   429, 5xx, no answer: tried again later — the operator fixes the settings.
//!
//! Callback: Twilio posts the message's status form-encoded to the `StatusCallback`, signed
//! with `X-Twilio-Signature` = base64(HMAC-SHA1(AuthToken, URL + every parameter's name
//! and value sorted by name)).

use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::Sha1;

use super::{Callback, CallbackError, Context, Gateway, Outgoing, Receipt, SubmitError, Submitted};
use crate::secret::Secret;
use crate::sms::status::{Delivery, Failure};

/// `[sms.gateways.NAME]` with `kind = "twilio"`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// `AC` and 32 hex digits.
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sending number (E.164) or alphanumeric sender ID; used when the account has no
    /// registered sender name. Give this or `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// `MG` and 32 hex digits: Twilio picks the sender from the service's pool.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default = "default_api_base")]
    pub api_base: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_api_base() -> String {
    "https://api.twilio.com".into()
}

fn default_timeout() -> u64 {
    10
}

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// `X-Twilio-Signature` of a callback posted to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Twilio sorts by name, byte-wise (case-sensitive); a stable sort keeps repeated names
    // in the order they were posted.
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a 400's Twilio error code means for the message: `Some` when the message itself
/// can never be sent, `None` when the request was wrong for a reason the operator fixes
/// (sender, service, callback URL).
fn refusal(code: u64) -> Option<Failure> {
    match code {
        // Not a valid number; not a mobile number; not reachable by SMS; a landline;
        // To and From the same.
        21211 | 21614 | 21612 | 21635 | 21266 => Some(Failure::InvalidDestination),
        // The destination's region is not enabled on the account; the recipient replied
        // STOP; the number is on a blocklist.
        21408 | 21610 | 21611 | 30004 => Some(Failure::NotAllowed),
        // Sender, service or callback settings, credentials, account state.
        20003 | 20404 | 21212 | 21603 | 21606 | 21609 | 21659 | 21701 | 21703 | 21704 | 21705
        | 30002 => None,
        // The text itself (missing, too long) and anything else Twilio refuses.
        _ => Some(Failure::Rejected),
    }
}

/// A failed message's Twilio `ErrorCode`, in Odoo's words.
fn delivery_failure(code: u64) -> Option<Failure> {
    match code {
        // Unreachable handset (off, out of coverage); queue overflow; unknown error.
        30003 | 30001 | 30008 => Some(Failure::NotDelivered),
        // Unknown destination handset; landline or unreachable carrier; invalid To.
        30005 | 30006 | 21211 | 21614 => Some(Failure::InvalidDestination),
        // Blocked; filtered by the carrier; unregistered sender (A2P 10DLC, toll free).
        30004 | 30007 | 30032 | 30034 | 21610 | 21408 => Some(Failure::NotAllowed),
        // The validity period ended before delivery.
        30036 => Some(Failure::Expired),
        _ => None,
    }
}

pub struct TwilioGateway {
    messages_url: String,
    account_sid: String,
    auth_token: Secret,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    timeout: Duration,
    callback_url: String,
    http: reqwest::Client,
}

impl TwilioGateway {
    pub fn new(settings: &TwilioSettings, cx: Context) -> Result<TwilioGateway, String> {
        let key = |field: &str| format!("sms.gateways.{}.{field}", cx.name);
        if !is_sid(&settings.account_sid, "AC") {
            return Err(format!(
                "{} must be AC and 32 hex digits",
                key("account_sid")
            ));
        }
        if settings.auth_token.expose().is_empty() {
            return Err(format!("{} is required", key("auth_token")));
        }
        if let Some(service) = &settings.messaging_service_sid
            && !is_sid(service, "MG")
        {
            return Err(format!(
                "{} must be MG and 32 hex digits",
                key("messaging_service_sid")
            ));
        }
        let from = settings.from.clone().filter(|f| !f.trim().is_empty());
        if from.is_none() && settings.messaging_service_sid.is_none() {
            return Err(format!(
                "{} or {} is required",
                key("from"),
                key("messaging_service_sid")
            ));
        }
        let base = reqwest::Url::parse(&settings.api_base)
            .map_err(|e| format!("{}: {e}", key("api_base")))?;
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            base.as_str().trim_end_matches('/'),
            settings.account_sid
        );
        Ok(TwilioGateway {
            messages_url,
            account_sid: settings.account_sid.clone(),
            auth_token: settings.auth_token.clone(),
            from,
            messaging_service_sid: settings.messaging_service_sid.clone(),
            timeout: Duration::from_secs(settings.timeout_secs.max(1)),
            callback_url: cx.callback_url(),
            http: cx.http,
        })
    }

    async fn post(&self, message: &Outgoing) -> Result<Submitted, SubmitError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("To", &message.to),
            ("Body", &message.text),
            ("StatusCallback", &self.callback_url),
        ];
        // The account's registered sender name goes as an alphanumeric sender ID; with a
        // Messaging Service Twilio takes it as the sender from the service's pool.
        if let Some(from) = message.sender.as_ref().or(self.from.as_ref()) {
            form.push(("From", from));
        }
        if let Some(service) = &self.messaging_service_sid {
            form.push(("MessagingServiceSid", service));
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| SubmitError::Transient(format!("form not encoded: {e}")))?;
        let response = self
            .http
            .post(&self.messages_url)
            .timeout(self.timeout)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| SubmitError::Transient(format!("Twilio unreachable: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let code = answer.get("code").and_then(Value::as_u64);
        if status.is_success() {
            let sid = answer
                .get("sid")
                .and_then(Value::as_str)
                .filter(|sid| is_sid(sid, "SM") || is_sid(sid, "MM"))
                .ok_or_else(|| {
                    SubmitError::Transient(format!("Twilio answered {status} without a sid"))
                })?;
            return Ok(Submitted {
                gateway_ref: sid.to_owned(),
            });
        }
        let reason = format!(
            "Twilio answered {status}{}",
            code.map(|c| format!(" (error {c})")).unwrap_or_default()
        );
        if status == reqwest::StatusCode::BAD_REQUEST
            && let Some(failure) = code.and_then(refusal)
        {
            return Err(SubmitError::Refused { failure, reason });
        }
        Err(SubmitError::Transient(reason))
    }
}

impl Gateway for TwilioGateway {
    fn submit<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Submitted, SubmitError>> {
        Box::pin(self.post(message))
    }

    fn read_callback(&self, callback: &Callback<'_>) -> Result<Vec<Receipt>, CallbackError> {
        let given = callback.signature(SIGNATURE_HEADER)?;
        // A body that is not a form cannot carry a valid signature: 403, like one that
        // was tampered with.
        let params: Vec<(String, String)> =
            serde_urlencoded::from_bytes(callback.body).map_err(|_| CallbackError::BadSignature)?;
        let expected = signature(self.auth_token.expose(), callback.url, &params);
        Callback::check_signature(given, &expected)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let sid = param("MessageSid")
            .filter(|sid| is_sid(sid, "SM") || is_sid(sid, "MM"))
            .ok_or_else(|| CallbackError::Invalid("MessageSid missing or malformed".into()))?;
        if param("AccountSid").is_some_and(|a| a != self.account_sid) {
            return Err(CallbackError::Invalid("AccountSid is not ours".into()));
        }
        let status = param("MessageStatus")
            .ok_or_else(|| CallbackError::Invalid("MessageStatus missing".into()))?;
        let error_code = match param("ErrorCode").filter(|c| !c.is_empty()) {
            None => None,
            Some(code) => Some(code.parse::<u64>().map_err(|_| {
                CallbackError::Invalid(format!("ErrorCode {code:?} is not a number"))
            })?),
        };
        let delivery = match status {
            "queued" | "accepted" | "scheduled" | "sending" | "sent" => Delivery::Sent,
            "delivered" | "read" => Delivery::Delivered,
            "undelivered" => Delivery::Failed(
                error_code
                    .and_then(delivery_failure)
                    .unwrap_or(Failure::NotDelivered),
            ),
            // Failed: Twilio could not send it at all. Rejected, unless the code blames
            // the destination (an unknown or barred number, an expired validity).
            "failed" => Delivery::Failed(match error_code.and_then(delivery_failure) {
                Some(Failure::NotDelivered) | None => Failure::Rejected,
                Some(failure) => failure,
            }),
            "canceled" => Delivery::Failed(Failure::Rejected),
            other => {
                return Err(CallbackError::Invalid(format!(
                    "unknown MessageStatus {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        Ok(vec![Receipt {
            gateway_ref: sid.to_owned(),
            delivery,
            detail: Some(match error_code {
                Some(code) => format!("{status} (error {code})"),
                None => status.to_owned(),
            }),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The example of Twilio's "Webhooks security" page.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn refusals_by_code() {
        assert_eq!(refusal(21211), Some(Failure::InvalidDestination));
        assert_eq!(refusal(21610), Some(Failure::NotAllowed));
        assert_eq!(refusal(21617), Some(Failure::Rejected));
        assert_eq!(refusal(21606), None);
        assert_eq!(delivery_failure(30005), Some(Failure::InvalidDestination));
        assert_eq!(delivery_failure(30007), Some(Failure::NotAllowed));
        assert_eq!(delivery_failure(30003), Some(Failure::NotDelivered));
    }
}
