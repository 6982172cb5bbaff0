//! Typed outcomes of ledger operations.

use super::{Credits, CreditsError, HoldStatus};

/// Everything a ledger operation can refuse, plus storage failures.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid amount: {0}")]
    InvalidAmount(#[from] CreditsError),
    #[error("insufficient credit: {needed} needed, {available} available")]
    InsufficientCredit { needed: Credits, available: Credits },
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("unknown account")]
    UnknownAccount,
    #[error("unknown transaction")]
    UnknownHold,
    #[error("transaction is already {status}")]
    HoldClosed { status: HoldStatus },
    #[error("transaction expired")]
    HoldExpired,
    #[error("transaction belongs to another service")]
    WrongService,
    #[error("account is disabled")]
    Disabled,
    #[error("invalid expiry: {0}")]
    InvalidExpiry(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Store(String),
}

impl From<diesel::result::Error> for LedgerError {
    /// Lock time-outs and serialization failures are worth a retry: "unavailable".
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                LedgerError::Unavailable(e.to_string())
            }
            // A lost connection (PostgreSQL stopped or the backend terminated): the
            // database is away, not broken.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => LedgerError::Unavailable(e.to_string()),
            Error::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database table is locked")
                    || info.message().contains("database or disk is full")
                    || info.message().contains("terminating connection")
                    || info.message().contains("server closed the connection")
                    || info.message().contains("no connection to the server") =>
            {
                LedgerError::Unavailable(e.to_string())
            }
            _ => LedgerError::Store(e.to_string()),
        }
    }
}

impl LedgerError {
    /// A failed account lookup: a missing row is an unknown account, not a storage error.
    pub fn from_account_lookup(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => LedgerError::UnknownAccount,
            other => other.into(),
        }
    }

    /// A stable machine-readable name, used in problem types and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::InvalidAmount(_) => "invalid_amount",
            LedgerError::InsufficientCredit { .. } => "insufficient_credit",
            LedgerError::UnknownService(_) => "unknown_service",
            LedgerError::UnknownAccount => "unknown_account",
            LedgerError::UnknownHold => "unknown_transaction",
            LedgerError::HoldClosed { .. } => "transaction_closed",
            LedgerError::HoldExpired => "transaction_expired",
            LedgerError::WrongService => "wrong_service",
            LedgerError::Disabled => "account_disabled",
            LedgerError::InvalidExpiry(_) => "invalid_expiry",
            LedgerError::Invalid(_) => "invalid_input",
            LedgerError::Conflict(_) => "conflict",
            LedgerError::IdempotencyMismatch => "idempotency_key_reused",
            LedgerError::Unavailable(_) => "unavailable",
            LedgerError::Store(_) => "storage_error",
        }
    }
}
