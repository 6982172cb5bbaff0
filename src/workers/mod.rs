//! Background loops the server runs beside its faces: each owns a timer or a bell, calls
//! the store or a use case, and stops with the server.
//!
//! - [`alerts`]: sends queued low-credit e-mails, retrying with backoff.
//! - [`sms`]: hands queued SMS to the operator's gateway and records what it answered.
//! - [`sweeper`]: closes expired holds and lots.
//! - [`odoo_refresh`]: re-reads every registered Odoo database.

pub mod alerts;
pub mod odoo_refresh;
pub mod sms;
pub mod sweeper;
