//! The outbox worker: claims due alerts, sends them, records the outcome.

use std::time::Duration;

use crate::alerts::content::render;
use crate::alerts::mailer::Mailer;
use crate::config::AlertSettings;
use crate::error::AppError;
use crate::ledger::Timestamp;
use crate::pages::session::Keys;
use crate::store::{AlertJob, Store};
use crate::workers::{backoff, blocking};

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub sent: usize,
    pub failed: usize,
}

/// Drains the alert outbox of one store.
#[derive(Clone)]
pub struct Worker {
    pub store: Store,
    pub mailer: Mailer,
    pub settings: AlertSettings,
    pub public_url: String,
    /// The portal's keys: alert links are signed with them.
    pub keys: Keys,
}

/// Exponential backoff with jitter for the alert outbox; see [`backoff`].
pub fn retry_delay(settings: &AlertSettings, attempts: i32) -> Duration {
    backoff(settings.retry_base_secs, settings.retry_max_secs, attempts)
}

impl Worker {
    /// Claims due alerts once and tries to send each.
    pub async fn run_once(&self) -> Result<RoundReport, AppError> {
        let store = self.store.clone();
        let (batch, lease) = (
            self.settings.batch,
            i64::try_from(self.settings.lease_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
        );
        let jobs = blocking(move || store.claim_alerts(batch, lease)).await?;
        let mut report = RoundReport::default();
        for job in jobs {
            let content = render(&job, &self.public_url, &self.keys);
            match self.mailer.send(&job, &content).await {
                Ok(()) => {
                    let store = self.store.clone();
                    blocking(move || store.alert_sent(job.id)).await?;
                    tracing::info!(alert = %job.id, "low-credit alert sent");
                    report.sent += 1;
                }
                Err(error) => {
                    self.record_failure(&job, &error).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn record_failure(&self, job: &AlertJob, error: &str) -> Result<(), AppError> {
        let delay = retry_delay(&self.settings, job.attempts);
        let micros = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
        let retry_at = Timestamp::from_micros(self.store.now().micros().saturating_add(micros));
        tracing::warn!(alert = %job.id, attempts = job.attempts, %error, retry_in_secs = delay.as_secs(), "alert not sent");
        let (store, id, error) = (self.store.clone(), job.id, error.to_owned());
        blocking(move || store.alert_failed(id, &error, retry_at)).await
    }

    /// Runs rounds forever (the caller aborts the task at shutdown).
    pub async fn run(self) {
        let mut ticker =
            tokio::time::interval(Duration::from_secs(self.settings.poll_interval_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Keep going while rounds are full: a backlog drains without waiting.
            loop {
                match self.run_once().await {
                    Ok(r) if r.sent + r.failed >= self.settings.batch as usize && r.sent > 0 => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "alert round failed");
                        break;
                    }
                }
            }
        }
    }
}
