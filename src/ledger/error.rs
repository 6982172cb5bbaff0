//! Typed outcomes of ledger operations, and the storage error the ledger sees.

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
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// Storage could not answer; the ledger refused nothing.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The cause of a storage failure, kept whole for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why storage could not do what the ledger asked. The store builds these from its
/// database's errors, so the ledger never sees SQL.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A row the caller named is not there.
    #[error("not found: {0}")]
    NotFound(#[source] Cause),
    /// Worth a retry: a lock or serialization time-out, a lost connection, a full disk,
    /// no connection free before the deadline.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Anything else: a broken query, a corrupt row, a failed task.
    #[error("storage error: {0}")]
    Failed(#[source] Cause),
}

impl StorageError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        StorageError::Unavailable(cause.into())
    }

    pub fn failed(cause: impl Into<Cause>) -> Self {
        StorageError::Failed(cause.into())
    }

    /// What went wrong underneath, without the variant's prefix.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match self {
            StorageError::NotFound(c) | StorageError::Unavailable(c) | StorageError::Failed(c) => {
                c.as_ref()
            }
        }
    }

    /// A stable machine-readable name, used in problem types and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Unavailable(_) => "unavailable",
            StorageError::NotFound(_) | StorageError::Failed(_) => "storage_error",
        }
    }
}

impl LedgerError {
    /// A failed account lookup: a missing row is an unknown account, not a storage error.
    pub fn unknown_if_missing(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => LedgerError::UnknownAccount,
            other => LedgerError::Storage(other),
        }
    }

    /// Storage failed in a way worth a retry (the database is away or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, LedgerError::Storage(StorageError::Unavailable(_)))
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
            LedgerError::IdempotencyMismatch => "idempotency_key_reused",
            LedgerError::Storage(e) => e.code(),
        }
    }
}
