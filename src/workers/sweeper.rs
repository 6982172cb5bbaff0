//! Background task closing expired holds and lots, so that stored totals catch up with
//! what reads already report.

use std::time::Duration;

use crate::store::Store;

/// Accounts settled per round; the rest wait for the next tick.
const BATCH: i64 = 500;

/// Settles due accounts every `interval`, forever (the caller aborts it at shutdown).
pub async fn run(store: Store, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || sweep_once(&store)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(accounts = n, "settled expired holds and lots"),
            Ok(Err(e)) => tracing::warn!(error = %e, "sweeper round failed"),
            Err(e) => tracing::error!(error = %e, "sweeper task panicked"),
        }
    }
}

/// One round: settles every due account (up to the batch size); returns how many.
pub fn sweep_once(store: &Store) -> Result<usize, crate::ledger::LedgerError> {
    let due = store.accounts_to_settle(BATCH)?;
    for id in &due {
        store.settle(*id)?;
    }
    Ok(due.len())
}
