//! The bridge to Odoo: a JSON-RPC client for `/jsonrpc`, and the read of a registered
//! database's companies and IAP accounts.

pub mod client;
pub mod sync;
pub mod target;

pub use client::{OdooClient, OdooError};
pub use sync::{OdooAccount, Snapshot};
pub use target::TargetPolicy;
