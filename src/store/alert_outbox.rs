//! The low-credit alert outbox: claimed by the alert worker, marked sent or failed, listed, retried.

use super::audit::{AuditRecord, write_audit_record};
use super::rows::credits;
use super::schema::{accounts, alert_outbox, services};
use super::{Store, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::{AccountId, Credits, Timestamp, entity_id};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

entity_id! {
    /// A low-credit alert in the outbox.
    pub AlertId
}

/// An alert to send, with what the message needs.
#[derive(Clone, Debug)]
pub struct AlertJob {
    pub id: AlertId,
    pub recipient: String,
    pub lang_code: Option<String>,
    pub available: Credits,
    pub threshold: Credits,
    pub created_at: Timestamp,
    /// Delivery attempts so far, this one included.
    pub attempts: i32,
    pub service_name: String,
    pub service_label: String,
    pub unit_name: String,
    pub integer_balance: bool,
    pub dbuuid: Option<String>,
    pub account_id: AccountId,
}

/// Where an alert stands, for operators.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertStatus {
    pub id: AlertId,
    pub account_id: AccountId,
    pub recipient: String,
    /// `pending`, `failing` (pending with failed attempts) or `sent`.
    pub state: &'static str,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
}

/// Which alerts to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertFilter {
    All,
    Pending,
    Failing,
    Sent,
}

impl AlertFilter {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(AlertFilter::All),
            "pending" => Some(AlertFilter::Pending),
            "failing" => Some(AlertFilter::Failing),
            "sent" => Some(AlertFilter::Sent),
            _ => None,
        }
    }
}

/// Picks due alert ids; PostgreSQL skips rows another worker has locked, so replicas
/// share the outbox without waiting on each other.
pub(super) trait DueAlerts {
    fn due_alerts(&mut self, now: i64, limit: i64) -> QueryResult<Vec<AlertId>>;
}

impl DueAlerts for SqliteConnection {
    fn due_alerts(&mut self, now: i64, limit: i64) -> QueryResult<Vec<AlertId>> {
        // BEGIN IMMEDIATE already made this connection the only writer.
        alert_outbox::table
            .filter(alert_outbox::status.eq("pending"))
            .filter(alert_outbox::next_attempt_at.le(now))
            .filter(alert_outbox::claimed_until.le(now))
            .order(alert_outbox::id)
            .limit(limit)
            .select(alert_outbox::id)
            .load(self)
    }
}

impl DueAlerts for PgConnection {
    fn due_alerts(&mut self, now: i64, limit: i64) -> QueryResult<Vec<AlertId>> {
        alert_outbox::table
            .filter(alert_outbox::status.eq("pending"))
            .filter(alert_outbox::next_attempt_at.le(now))
            .filter(alert_outbox::claimed_until.le(now))
            .order(alert_outbox::id)
            .limit(limit)
            .select(alert_outbox::id)
            .for_update()
            .skip_locked()
            .load(self)
    }
}

pub(super) type JobRow = (
    (AlertId, String, Option<String>, i64, i64, i64, i32),
    (Option<String>, AccountId),
    (String, String, String, bool),
);

impl Store {
    /// Claims up to `limit` due alerts for `lease_micros` (a worker that dies lets them
    /// lapse back) and counts the attempt.
    pub fn claim_alerts(&self, limit: i64, lease_micros: i64) -> Result<Vec<AlertJob>, AppError> {
        let now = self.now().micros();
        let rows: Vec<JobRow> = write_tx!(self, |c| {
            let ids = c.due_alerts(now, limit)?;
            if ids.is_empty() {
                return Ok::<_, AppError>(Vec::new());
            }
            diesel::update(alert_outbox::table.filter(alert_outbox::id.eq_any(&ids)))
                .set((
                    alert_outbox::claimed_until.eq(now.saturating_add(lease_micros)),
                    alert_outbox::attempts.eq(alert_outbox::attempts + 1),
                ))
                .execute(c)?;
            Ok(alert_outbox::table
                .inner_join(accounts::table.inner_join(services::table))
                .filter(alert_outbox::id.eq_any(&ids))
                .order(alert_outbox::id)
                .select((
                    (
                        alert_outbox::id,
                        alert_outbox::recipient,
                        alert_outbox::lang_code,
                        alert_outbox::available,
                        alert_outbox::threshold,
                        alert_outbox::created_at,
                        alert_outbox::attempts,
                    ),
                    (accounts::dbuuid, accounts::id),
                    (
                        services::technical_name,
                        services::label,
                        services::unit_name,
                        services::integer_balance,
                    ),
                ))
                .load::<JobRow>(c)?)
        })?;
        rows.into_iter()
            .map(
                |(
                    (id, recipient, lang_code, available, threshold, created_at, attempts),
                    (dbuuid, account_id),
                    (service_name, service_label, unit_name, integer_balance),
                )| {
                    Ok(AlertJob {
                        id,
                        recipient,
                        lang_code,
                        available: credits(available)?,
                        threshold: credits(threshold)?,
                        created_at: Timestamp::from_micros(created_at),
                        attempts,
                        service_name,
                        service_label,
                        unit_name,
                        integer_balance,
                        dbuuid,
                        account_id,
                    })
                },
            )
            .collect()
    }

    /// Records a delivery.
    pub fn alert_sent(&self, id: AlertId) -> Result<(), AppError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            diesel::update(alert_outbox::table.find(id))
                .set((
                    alert_outbox::status.eq("sent"),
                    alert_outbox::sent_at.eq(now),
                    alert_outbox::claimed_until.eq(0),
                ))
                .execute(c)
        })?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub fn alert_failed(
        &self,
        id: AlertId,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), AppError> {
        let error: String = error.chars().take(1000).collect();
        write_tx!(self, |c| {
            diesel::update(alert_outbox::table.find(id))
                .set((
                    alert_outbox::last_error.eq(&error),
                    alert_outbox::next_attempt_at.eq(retry_at.micros()),
                    alert_outbox::claimed_until.eq(0),
                ))
                .execute(c)
        })?;
        Ok(())
    }

    /// Alerts, newest first.
    pub fn list_alerts(
        &self,
        filter: AlertFilter,
        limit: i64,
    ) -> Result<Vec<AlertStatus>, AppError> {
        type Row = (
            AlertId,
            AccountId,
            String,
            String,
            i32,
            Option<String>,
            i64,
            i64,
            Option<i64>,
        );
        let rows: Vec<Row> = read_tx!(self, |c| {
            let mut query = alert_outbox::table
                .order(alert_outbox::id.desc())
                .limit(limit)
                .select((
                    alert_outbox::id,
                    alert_outbox::account_id,
                    alert_outbox::recipient,
                    alert_outbox::status,
                    alert_outbox::attempts,
                    alert_outbox::last_error,
                    alert_outbox::created_at,
                    alert_outbox::next_attempt_at,
                    alert_outbox::sent_at,
                ))
                .into_boxed();
            query = match filter {
                AlertFilter::All => query,
                AlertFilter::Pending => query.filter(alert_outbox::status.eq("pending")),
                AlertFilter::Failing => query
                    .filter(alert_outbox::status.eq("pending"))
                    .filter(alert_outbox::last_error.is_not_null()),
                AlertFilter::Sent => query.filter(alert_outbox::status.eq("sent")),
            };
            query.load::<Row>(c)
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    account_id,
                    recipient,
                    status,
                    attempts,
                    last_error,
                    created_at,
                    next,
                    sent_at,
                )| {
                    let sent = status == "sent";
                    AlertStatus {
                        id,
                        account_id,
                        recipient,
                        state: if sent {
                            "sent"
                        } else if last_error.is_some() {
                            "failing"
                        } else {
                            "pending"
                        },
                        attempts,
                        last_error,
                        created_at: Timestamp::from_micros(created_at),
                        next_attempt_at: (!sent).then_some(Timestamp::from_micros(next)),
                        sent_at: sent_at.map(Timestamp::from_micros),
                    }
                },
            )
            .collect())
    }

    /// Sends a failing alert again at the worker's next round, audited in the same
    /// transaction; false (and no line) when the alert is not waiting to be sent.
    pub fn retry_alert(&self, id: AlertId, audit: &AuditRecord) -> Result<bool, AppError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            let n = diesel::update(
                alert_outbox::table
                    .filter(alert_outbox::id.eq(id))
                    .filter(alert_outbox::status.eq("pending")),
            )
            .set(alert_outbox::next_attempt_at.eq(now))
            .execute(c)?;
            if n > 0 {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, AppError>(n > 0)
        })
    }
}
