//! The SMS worker: drains the message outbox into the gateway and the delivery reports
//! into Odoo's `/sms/status`.
//!
//! - A message is claimed for `sms.lease_secs`, handed to the gateway once per attempt
//!   (bounded by `sms.submit_timeout_secs`), and its outcome written with the ledger
//!   operation that pays for it. A worker that dies mid-attempt lets the claim lapse and
//!   the message is tried again: a gateway that took it without our knowing may then see
//!   it twice (the JSON webhook's `Idempotency-Key` lets a relay drop the copy). That
//!   window is one gateway call; nothing else is ever sent twice.
//! - Reports go per Odoo server in id order, grouped by status, at most 100 per call; a
//!   failed call holds back that server's newer reports until it is retried. After
//!   `REPORT_GIVE_UP` they are dropped (logged): Odoo keeps the SMS as `Sent`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::SmsSettings;
use crate::error::AppError;
use crate::ledger::{StorageError, Timestamp};
use crate::sms::gateway::{Gateway, Outgoing, SubmitError};
use crate::sms::status::Failure;
use crate::sms::{SmsMessageId, SmsReportId};
use crate::store::Store;
use crate::store::sms::{ReportJob, SmsJob};
use crate::workers::{backoff, blocking};

/// Reports older than this are dropped.
const REPORT_GIVE_UP_MICROS: i64 = crate::ledger::time::MICROS_PER_DAY;
/// Report calls per round, and reports per call.
const REPORT_URLS: usize = 8;
const REPORTS_PER_CALL: usize = 100;
/// Gateway calls in flight at once.
const IN_FLIGHT: usize = 8;

/// Asks the worker to stop: no attempt starts any more, the ones in flight finish.
#[derive(Clone)]
pub struct Stop {
    requested: Arc<std::sync::atomic::AtomicBool>,
    wake: Arc<Notify>,
    /// How long stopping may take (the longest attempt, and a margin).
    bound: Duration,
}

impl Stop {
    pub fn new(wake: Arc<Notify>, bound: Duration) -> Stop {
        Stop {
            requested: Arc::default(),
            wake,
            bound,
        }
    }

    /// Asks for the stop; returns how long to wait for it.
    pub fn request(&self) -> Duration {
        self.requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        self.bound
    }

    fn requested(&self) -> bool {
        self.requested.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub submitted: usize,
    pub failed: usize,
    pub retried: usize,
    pub reports_sent: usize,
}

/// Drains the SMS outbox of one store.
#[derive(Clone)]
pub struct SmsWorker {
    pub store: Store,
    /// The gateway that sends, and its name (stored with each message it took).
    pub gateway: Arc<dyn Gateway>,
    pub gateway_name: String,
    pub settings: SmsSettings,
    /// Reaches Odoo servers only where `odoo.allowed_hosts` allows (a `webhook_url` is
    /// the caller's claim).
    pub reports_http: reqwest::Client,
    pub policy: crate::odoo::TargetPolicy,
    /// Rung when a send call queued messages or a receipt queued reports.
    pub wake: Arc<Notify>,
    pub stop: Stop,
}

/// How one attempt ended.
enum Attempt {
    Submitted,
    Failed,
    Retried,
}

impl SmsWorker {
    fn micros(secs: u64) -> i64 {
        i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
    }

    /// When a failed attempt is tried again (and after how long).
    fn retry_at(&self, attempts: i32) -> (Timestamp, Duration) {
        let delay = backoff(
            self.settings.retry_base_secs,
            self.settings.retry_max_secs,
            attempts,
        );
        let micros = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
        (self.store.now().plus_micros(micros), delay)
    }

    /// Claims due messages once and hands each to the gateway.
    pub async fn send_round(&self) -> Result<RoundReport, AppError> {
        let store = self.store.clone();
        let (batch, lease) = (self.settings.batch, Self::micros(self.settings.lease_secs));
        let jobs = blocking(move || store.sms_claim(batch, lease)).await?;
        let mut report = RoundReport::default();
        let mut running = JoinSet::new();
        let mut jobs = jobs.into_iter();
        for job in jobs.by_ref() {
            while running.len() >= IN_FLIGHT {
                if let Some(done) = running.join_next().await {
                    tally(&mut report, done)?;
                }
            }
            if self.stop.requested() {
                // Not started: given back at once, for the next start to send.
                let ids: Vec<SmsMessageId> = std::iter::once(job.id)
                    .chain(jobs.by_ref().map(|j| j.id))
                    .collect();
                let store = self.store.clone();
                blocking(move || store.sms_release(&ids)).await?;
                break;
            }
            let worker = self.clone();
            running.spawn(async move { worker.attempt(job).await });
        }
        while let Some(done) = running.join_next().await {
            tally(&mut report, done)?;
        }
        Ok(report)
    }

    async fn attempt(&self, job: SmsJob) -> Result<Attempt, AppError> {
        let store = self.store.clone();
        if store.now() >= job.give_up_at {
            let id = job.id;
            blocking(move || {
                store.sms_give_up(id, Failure::Expired, "not taken by the gateway in time")
            })
            .await?;
            tracing::warn!(
                sms = %job.id,
                "SMS expired in the outbox; its credits are given back"
            );
            return Ok(Attempt::Failed);
        }
        let message = Outgoing {
            id: job.id,
            uuid: job.uuid.clone(),
            to: job.number.clone(),
            sender: job.sender.clone(),
            text: job.content.clone(),
            encoding: job.encoding,
            segments: job.segments,
        };
        let bound = Duration::from_secs(self.settings.submit_timeout_secs.max(1));
        let outcome = match tokio::time::timeout(bound, self.gateway.submit(&message)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SubmitError::Transient(format!(
                "the gateway did not answer within {} s",
                bound.as_secs()
            ))),
        };
        let id = job.id;
        match outcome {
            Ok(submitted) => {
                let name = self.gateway_name.clone();
                blocking(move || store.sms_submitted(id, &name, &submitted.gateway_ref)).await?;
                self.wake.notify_one();
                Ok(Attempt::Submitted)
            }
            Err(SubmitError::Refused { failure, reason }) => {
                tracing::warn!(sms = %id, %reason, "the gateway refused an SMS; its credits are given back");
                blocking(move || store.sms_give_up(id, failure, &reason)).await?;
                self.wake.notify_one();
                Ok(Attempt::Failed)
            }
            Err(SubmitError::Transient(error)) => {
                let (retry_at, delay) = self.retry_at(job.attempts);
                tracing::warn!(sms = %id, attempts = job.attempts, %error, retry_in_ms = delay.as_millis() as u64, "SMS not sent yet");
                blocking(move || store.sms_retry(id, &error, retry_at)).await?;
                Ok(Attempt::Retried)
            }
        }
    }

    /// Sends due delivery reports once.
    pub async fn report_round(&self) -> Result<usize, AppError> {
        let store = self.store.clone();
        let lease = Self::micros(self.settings.lease_secs);
        let jobs =
            blocking(move || store.sms_claim_reports(REPORT_URLS, REPORTS_PER_CALL, lease)).await?;
        let mut sent = 0;
        for job in jobs {
            let ids: Vec<SmsReportId> = job.items.iter().map(|i| i.0).collect();
            let store = self.store.clone();
            match self.post_reports(&job).await {
                Ok(()) => {
                    sent += ids.len();
                    blocking(move || store.sms_reports_done(&ids, None)).await?;
                }
                Err(ReportError::Refused(error)) => {
                    tracing::warn!(url = %job.webhook_url, %error, "Odoo refused SMS delivery reports; dropped");
                    blocking(move || store.sms_reports_done(&ids, Some(&error))).await?;
                }
                Err(ReportError::Retry(error)) => {
                    if store.now().micros() - job.created_at.micros() > REPORT_GIVE_UP_MICROS {
                        tracing::warn!(url = %job.webhook_url, %error, "SMS delivery reports undeliverable for a day; dropped");
                        blocking(move || store.sms_reports_done(&ids, Some(&error))).await?;
                        continue;
                    }
                    let (retry_at, _) = self.retry_at(job.attempts);
                    tracing::info!(url = %job.webhook_url, %error, "SMS delivery reports not taken yet");
                    let url = job.webhook_url.clone();
                    blocking(move || store.sms_reports_retry(&url, &ids, &error, retry_at)).await?;
                }
            }
        }
        Ok(sent)
    }

    async fn post_reports(&self, job: &ReportJob) -> Result<(), ReportError> {
        self.policy
            .check_url(&job.webhook_url)
            .map_err(ReportError::Retry)?;
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"message_statuses": message_statuses(&job.items)},
        });
        let mut request = self
            .reports_http
            .post(&job.webhook_url)
            .timeout(Duration::from_secs(15))
            .json(&body);
        if let Some(database) = &job.database {
            request = request.header("X-Odoo-Database", database);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ReportError::Retry(format!("unreachable: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReportError::Retry(format!("answered HTTP {status}")));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| ReportError::Retry(format!("answer is not JSON: {e}")))?;
        match answer.get("error") {
            // Odoo refuses a report it cannot read (17/18 UserError, 19 TypeError) and
            // would refuse it again: there is nothing to retry.
            Some(error) => Err(ReportError::Refused(
                error
                    .pointer("/data/name")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned(),
            )),
            None => Ok(()),
        }
    }

    /// Runs rounds forever (the caller aborts the task at shutdown).
    pub async fn run(self) {
        let poll = Duration::from_secs(self.settings.poll_interval_secs.max(1));
        loop {
            if self.stop.requested() {
                return;
            }
            // Keep going while rounds find work: a backlog drains without waiting.
            let busy = match (self.send_round().await, self.report_round().await) {
                (Ok(r), Ok(reports)) => r.submitted + r.failed + r.retried + reports > 0,
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "SMS round failed");
                    false
                }
            };
            if !busy {
                let _ = tokio::time::timeout(poll, self.wake.notified()).await;
            }
        }
    }
}

fn tally(
    report: &mut RoundReport,
    done: Result<Result<Attempt, AppError>, tokio::task::JoinError>,
) -> Result<(), AppError> {
    match done.map_err(|e| AppError::from(StorageError::failed(format!("SMS attempt: {e}"))))?? {
        Attempt::Submitted => report.submitted += 1,
        Attempt::Failed => report.failed += 1,
        Attempt::Retried => report.retried += 1,
    }
    Ok(())
}

enum ReportError {
    Retry(String),
    Refused(String),
}

/// Odoo's `message_statuses`: consecutive reports of one status make one group, so a
/// message's reports reach Odoo in the order they happened.
fn message_statuses(items: &[(SmsReportId, String, String)]) -> Vec<Value> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (_, uuid, status) in items {
        match groups.last_mut() {
            Some((last, uuids)) if last == status => uuids.push(uuid.clone()),
            _ => groups.push((status.clone(), vec![uuid.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(status, uuids)| json!({"sms_status": status, "uuids": uuids}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_order() {
        let items = vec![
            (
                SmsReportId::from_stored(1),
                "a".to_owned(),
                "sent".to_owned(),
            ),
            (
                SmsReportId::from_stored(2),
                "b".to_owned(),
                "sent".to_owned(),
            ),
            (
                SmsReportId::from_stored(3),
                "a".to_owned(),
                "delivered".to_owned(),
            ),
            (
                SmsReportId::from_stored(4),
                "c".to_owned(),
                "sent".to_owned(),
            ),
        ];
        assert_eq!(
            message_statuses(&items),
            vec![
                json!({"sms_status": "sent", "uuids": ["a", "b"]}),
                json!({"sms_status": "delivered", "uuids": ["a"]}),
                json!({"sms_status": "sent", "uuids": ["c"]}),
            ]
        );
    }
}
