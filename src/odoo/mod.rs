//! The bridge to Odoo: a client for Odoo's JSON-2 and `/jsonrpc` APIs, and the read of a registered
//! database's companies and IAP accounts.

pub mod client;
pub mod sync;
pub mod target;

pub use client::{OdooClient, OdooError, OdooProtocol, OdooSession};
pub use sync::{OdooAccount, Snapshot};
pub use target::TargetPolicy;
