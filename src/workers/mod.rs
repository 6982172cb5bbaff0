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

use std::time::Duration;

use crate::error::AppError;
use crate::ledger::StorageError;

/// Exponential backoff with jitter: base × 2^(attempt-1), capped, then scaled by a random
/// factor in [0.5, 1) so that a batch failing together does not retry together. Every
/// outbox (alerts, SMS, SMS reports) retries by it.
pub fn backoff(base_secs: u64, max_secs: u64, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let secs = base_secs.saturating_mul(1u64 << exponent).min(max_secs);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        0.5 + f64::from(byte[0]) / 512.0
    } else {
        0.75
    };
    Duration::from_secs_f64(secs as f64 * jitter)
}

/// Runs a store call off the async workers (every outbox worker's way to the database).
pub(crate) async fn blocking<T: Send + 'static, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, AppError>
where
    E: Into<AppError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f().map_err(Into::into))
        .await
        .map_err(|e| AppError::from(StorageError::failed(format!("worker task: {e}"))))?
}
