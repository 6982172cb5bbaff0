//! Low-credit alerts: the ledger queues them in the transaction that crosses the
//! threshold (see `ledger::ops`); this worker sends them by e-mail, retrying with backoff
//! until delivered.

pub mod content;
pub mod mailer;

pub use mailer::Mailer;
