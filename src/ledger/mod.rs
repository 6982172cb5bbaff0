//! The credit ledger: every rule about money, and nothing about HTTP or SQL.
//!
//! Operations are written once against [`repo::LedgerRepo`], which the store implements
//! for each database backend inside one write transaction that has locked one account.

pub mod credits;
pub mod error;
pub mod ops;
pub mod repo;
pub mod settle;
pub mod text;
pub mod time;
pub mod token;
pub mod types;

pub use credits::{Credits, CreditsError};
pub use error::{LedgerError, StorageError};
pub use time::Timestamp;
pub use types::*;
