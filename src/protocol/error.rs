//! Errors of the IAP protocol, in the shape Odoo's `iap_jsonrpc` reads: HTTP 200 with
//! `error.data.name` (the exception class) and `error.data.message`. Mapped here once.

use serde_json::{Value, json};

use crate::error::AppError;
use crate::ledger::{Credits, LedgerError, StorageError};
use crate::usecase::contact::ContactError;

const INSUFFICIENT_CREDIT: &str = "odoo.addons.iap.tools.iap_tools.InsufficientCreditError";
const ACCESS_ERROR: &str = "odoo.exceptions.AccessError";
const USER_ERROR: &str = "odoo.exceptions.UserError";

/// What the buy-credits link in an insufficient-credit answer needs.
#[derive(Clone, Debug)]
pub struct Shortfall {
    pub needed: Credits,
    pub service_name: String,
    pub trial: bool,
    /// This sidecar's `/iap/1/credit` page.
    pub base_url: String,
}

/// A JSON-RPC error answer.
#[derive(Debug)]
pub enum RpcError {
    /// The only error every Odoo version understands: opens "Buy credits".
    InsufficientCredit(Shortfall),
    /// Refused: wrong key, unknown or closed transaction, service not for this database.
    Access(String),
    /// The request itself is wrong (body, types, values).
    Invalid(String),
    /// The sidecar could not answer now (database down or busy).
    Unavailable,
    /// This client address sent more requests without a key than `limits.*` allow.
    RateLimited { retry_after_secs: u64 },
}

impl RpcError {
    pub fn name(&self) -> &'static str {
        match self {
            RpcError::InsufficientCredit(_) => INSUFFICIENT_CREDIT,
            // Odoo's balance and account callers only catch AccessError: a busy database
            // must degrade to "-1" or a logged warning there, not fail the user's action.
            RpcError::Access(_) | RpcError::Unavailable => ACCESS_ERROR,
            // Odoo shows a UserError's message as it is: the user learns to retry later.
            RpcError::Invalid(_) | RpcError::RateLimited { .. } => USER_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            RpcError::InsufficientCredit(s) => json!({
                "title": "Insufficient credit",
                "message": format!(
                    "You don't have enough credits to use the {} service ({} needed).",
                    s.service_name, s.needed
                ),
                "credit": s.needed.to_f64(),
                "service_name": s.service_name,
                "trial": s.trial,
                "base_url": s.base_url,
            })
            .to_string(),
            RpcError::Access(m) | RpcError::Invalid(m) => m.clone(),
            RpcError::Unavailable => {
                "The IAP service is temporarily unavailable; please retry later.".into()
            }
            RpcError::RateLimited { retry_after_secs } => format!(
                "Too many requests from this address: please retry in {retry_after_secs} s."
            ),
        }
    }

    /// The `error` member of the answer.
    pub fn to_json(&self) -> Value {
        let message = self.message();
        json!({
            "code": 200,
            "message": "Odoo Server Error",
            "data": {
                "name": self.name(),
                "message": message,
                "arguments": [message],
                "debug": "",
                "context": {},
            }
        })
    }
}

impl From<LedgerError> for RpcError {
    /// Insufficient credit needs the service's context: callers that can hit it build a
    /// [`Shortfall`] themselves; reaching it here means an internal mistake.
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InvalidAmount(e) => RpcError::Invalid(format!("invalid amount: {e}")),
            LedgerError::Invalid(m) | LedgerError::InvalidExpiry(m) => RpcError::Invalid(m),
            LedgerError::UnknownService(name) => {
                RpcError::Access(format!("unknown service {name:?}"))
            }
            LedgerError::UnknownAccount => RpcError::Access("unknown account".into()),
            // A key of another service must not learn that the transaction exists.
            LedgerError::UnknownHold | LedgerError::WrongService => {
                RpcError::Access("unknown transaction token".into())
            }
            LedgerError::HoldClosed { status } => {
                RpcError::Access(format!("the transaction is already {status}"))
            }
            LedgerError::HoldExpired => {
                RpcError::Access("the transaction expired before it was captured".into())
            }
            LedgerError::Disabled => RpcError::Access(
                "this IAP account is disabled (its token ends with +disabled)".into(),
            ),
            LedgerError::IdempotencyMismatch => {
                RpcError::Invalid("idempotency key reused with another request".into())
            }
            LedgerError::InsufficientCredit { needed, available } => {
                tracing::error!(%needed, %available, "insufficient credit without context");
                RpcError::Access("insufficient credit".into())
            }
            LedgerError::Storage(e @ StorageError::Unavailable(_)) => {
                tracing::warn!(error = %e.cause(), "database unavailable");
                RpcError::Unavailable
            }
            LedgerError::Storage(e) => {
                tracing::error!(error = %e.cause(), "storage error");
                RpcError::Unavailable
            }
        }
    }
}

impl From<AppError> for RpcError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Ledger(e) => e.into(),
            AppError::Storage(e) => LedgerError::Storage(e).into(),
            AppError::Invalid(m) => RpcError::Invalid(m),
            AppError::NotFound(m) | AppError::Conflict(m) => RpcError::Access(m),
        }
    }
}

impl From<ContactError> for RpcError {
    /// Insufficient credit needs the service's context: the provider face builds the
    /// [`Shortfall`] itself.
    fn from(e: ContactError) -> Self {
        match e {
            ContactError::NotAvailable { .. } | ContactError::TooManyAccounts { .. } => {
                RpcError::Access(e.to_string())
            }
            ContactError::Insufficient { needed, .. } => LedgerError::InsufficientCredit {
                needed,
                available: Credits::ZERO,
            }
            .into(),
            ContactError::Ledger(e) => e.into(),
        }
    }
}
