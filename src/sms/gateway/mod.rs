//! The `Gateway` interface: how a message leaves for the operator's SMS provider and how
//! the provider's receipts come back.
//!
//! The outbox worker (`workers::sms`) calls [`Gateway::submit`] once per due message; the
//! answer decides the message's fate:
//! - `Ok(Submitted)`: the provider took it; the credits are consumed and Odoo is told
//!   `sent`. Its reference (`gateway_ref`) ties later receipts to the message.
//! - `Err(SubmitError::Transient)`: the provider could not be reached or asked us to come
//!   back (HTTP 5xx/429, SMPP throttling, no bind): retried with backoff.
//! - `Err(SubmitError::Refused)`: the provider will never take it (invalid number,
//!   barred destination, bad credentials are *not* here: they are transient, the
//!   operator fixes them): the message fails, the credits are given back.
//!
//! Receipts reach us two ways. Providers that call back over HTTP (Twilio's status
//! callbacks, the JSON webhook) post to `/sms/receipts/{gateway}`; that route hands the
//! request to [`Gateway::read_callback`], which checks its signature and reads it. A
//! session protocol (SMPP's `deliver_sm`) pushes them into the [`ReceiptSink`] the
//! adapter was built with.

pub mod smpp;
pub mod twilio;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::SmsMessageId;
use super::status::{Delivery, Failure};
use super::text::Encoding;

/// One message to hand to the provider.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Our id for the message: stable across retries.
    pub id: SmsMessageId,
    /// Odoo's uuid for it (32 lowercase hex): a provider that deduplicates can key on it.
    pub uuid: String,
    /// E.164, with `+`.
    pub to: String,
    /// The account's registered sender name, when it has one; else the gateway's own
    /// sender (number or short code).
    pub sender: Option<String>,
    pub text: String,
    pub encoding: Encoding,
    pub segments: u32,
}

/// The provider took the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The provider's id for it (Twilio's `SM…` sid, SMPP's `message_id`).
    pub gateway_ref: String,
}

/// Why the provider did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Worth trying again later.
    #[error("{0}")]
    Transient(String),
    /// Never worth trying again: the message fails with `failure`.
    #[error("refused ({}): {reason}", failure.as_str())]
    Refused { failure: Failure, reason: String },
}

/// A provider's word on a message it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub gateway_ref: String,
    pub delivery: Delivery,
    /// The provider's own code or text, kept for the operator.
    pub detail: Option<String>,
}

/// A callback as it reached `/sms/receipts/{gateway}`.
#[derive(Clone, Debug)]
pub struct Callback<'a> {
    /// The URL the provider was told to call, as configured (`http.public_url` +
    /// path): signatures are computed over it, not over what a proxy rewrote.
    pub url: &'a str,
    pub headers: &'a actix_web::http::header::HeaderMap,
    pub body: &'a [u8],
}

impl Callback<'_> {
    /// The callback's signature header; a missing or unreadable one is a bad signature.
    pub fn signature(&self, header: &str) -> Result<&str, CallbackError> {
        self.headers
            .get(header)
            .and_then(|v| v.to_str().ok())
            .ok_or(CallbackError::BadSignature)
    }

    /// Checks `given` against `expected` in constant time.
    pub fn check_signature(given: &str, expected: &str) -> Result<(), CallbackError> {
        if crate::ledger::token::constant_time_eq(given, expected) {
            Ok(())
        } else {
            Err(CallbackError::BadSignature)
        }
    }
}

/// Why a callback was not read. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Missing or wrong signature: 403.
    #[error("the callback's signature does not match")]
    BadSignature,
    /// The body could not be read, or holds a status we do not know: 400.
    #[error("{0}")]
    Invalid(String),
    /// This gateway does not call back over HTTP: 404.
    #[error("this gateway takes no callbacks")]
    NotSupported,
}

/// Where a session protocol's receipts go (SMPP's `deliver_sm`): the worker side records
/// them exactly as it records HTTP callbacks.
pub type ReceiptSink = Arc<dyn Fn(Receipt) -> BoxFuture<'static, ()> + Send + Sync>;

/// An SMS provider.
pub trait Gateway: Send + Sync {
    /// Hands one message to the provider. Must return within the worker's deadline; the
    /// worker also bounds it.
    fn submit<'a>(&'a self, message: &'a Outgoing)
    -> BoxFuture<'a, Result<Submitted, SubmitError>>;

    /// Checks and reads a provider callback.
    fn read_callback(&self, callback: &Callback<'_>) -> Result<Vec<Receipt>, CallbackError>;
}

/// One gateway in the config file, `[sms.gateways.NAME]`, by `kind`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum GatewaySettings {
    /// Twilio's Messages API (`twilio.rs`).
    Twilio(twilio::TwilioSettings),
    /// An SMSC over SMPP 3.4 (`smpp.rs`).
    Smpp(smpp::SmppSettings),
    /// A generic JSON webhook (`webhook.rs`).
    Webhook(webhook::WebhookSettings),
}

/// What an adapter is built with.
pub struct Context {
    /// The gateway's name in the config file.
    pub name: String,
    /// This sidecar's public origin (callback URLs are built from it).
    pub public_url: String,
    /// Where a session protocol pushes its receipts.
    pub receipts: ReceiptSink,
    /// An HTTP client bound by the outbound-URL policy of `odoo::target`.
    pub http: reqwest::Client,
}

impl Context {
    /// Where this gateway's provider posts its callbacks.
    pub fn callback_url(&self) -> String {
        format!("{}/sms/receipts/{}", self.public_url, self.name)
    }
}

/// Builds the adapter for one configured gateway.
pub fn build(settings: &GatewaySettings, cx: Context) -> Result<Arc<dyn Gateway>, String> {
    match settings {
        GatewaySettings::Twilio(s) => Ok(Arc::new(twilio::TwilioGateway::new(s, cx)?)),
        // Starts the session task: call from within the tokio runtime.
        GatewaySettings::Smpp(s) => Ok(Arc::new(smpp::SmppGateway::new(s, cx)?)),
        GatewaySettings::Webhook(s) => Ok(Arc::new(webhook::WebhookGateway::new(s, cx)?)),
    }
}

/// Every configured gateway by name.
pub type Gateways = BTreeMap<String, Arc<dyn Gateway>>;
