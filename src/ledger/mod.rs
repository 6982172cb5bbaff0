//! The credit ledger: every rule about money, and nothing about HTTP or SQL.
//!
//! Operations are written once against [`repo::HoldRepo`] and [`repo::LedgerRepo`], which
//! the store implements for each database backend inside one write transaction that has
//! locked one account (and the ledger engine's overlay implements `HoldRepo` in memory).

pub mod audit;
pub mod credits;
pub mod error;
pub mod ids;
pub mod ops;
pub mod repo;
pub mod settle;
pub mod text;
pub mod time;
pub mod token;
pub mod types;

pub use audit::Audit;
pub use credits::{Credits, CreditsError};
pub use error::{LedgerError, StorageError};
pub(crate) use ids::entity_id;
pub use ids::{AccountId, HoldId, InvalidId, LotId, ServiceId};
pub use time::Timestamp;
pub use types::*;
