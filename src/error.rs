//! The application's error: what any use of the product outside the ledger itself
//! (admin tokens, Odoo registration, databases) can answer. Ledger refusals and storage
//! failures are carried whole, causes included; each face maps this enum once.

use crate::ledger::{LedgerError, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The ledger refused (amount, credit, account, transaction…).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Storage could not answer: retry-worthy or not, see [`StorageError`].
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The caller's input breaks a rule (a name, a list, a scope).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Something the caller named is not there.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or its state does not allow this.
    #[error("already exists: {0}")]
    Conflict(String),
}

impl AppError {
    /// A stable machine-readable name, used in problem types and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Ledger(e) => e.code(),
            AppError::Storage(e) => e.code(),
            AppError::Invalid(_) => "invalid_input",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
        }
    }

    /// Storage failed in a way worth a retry (the database is away or busy).
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::Ledger(e) => e.is_unavailable(),
            AppError::Storage(e) => matches!(e, StorageError::Unavailable(_)),
            _ => false,
        }
    }
}
