//! The Odoo refresh: every registered database is re-read on a timer, so the sidecar's
//! view of its companies and users stays current without an operator asking.

use std::time::Duration;

use actix_web::web;

use crate::odoo::TargetPolicy;
use crate::store::Store;
use crate::usecase::contact::Rules;
use crate::usecase::databases::refresh_database;

/// Re-reads every registered database every `interval` (the caller aborts it at shutdown).
pub async fn refresh_loop(
    store: Store,
    interval: Duration,
    timeout: Duration,
    policy: TargetPolicy,
    rules: Rules,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let listed = {
            let store = store.clone();
            web::block(move || store.list_databases()).await
        };
        let Ok(Ok(databases)) = listed else {
            tracing::warn!("could not list registered databases");
            continue;
        };
        for db in databases {
            match refresh_database(&store, &db.dbuuid, timeout, &policy, &rules).await {
                Ok(Ok(_)) => tracing::debug!(dbuuid = %db.dbuuid, "database refreshed"),
                Ok(Err(e)) => {
                    tracing::warn!(dbuuid = %db.dbuuid, error = %e, "database refresh failed")
                }
                Err(e) => {
                    tracing::warn!(dbuuid = %db.dbuuid, error = %e, "database refresh failed")
                }
            }
        }
    }
}
