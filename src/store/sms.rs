//! Stored SMS: the message outbox (`sms_messages`), the delivery reports owed to Odoo
//! (`sms_reports`) and SMS account registrations (`sms_registrations`). What a message may
//! become is decided in `usecase::sms`; here its rows are written, each change with the
//! ledger operation that pays for it in the same transaction.

use std::time::Instant;

use diesel::prelude::*;

use super::schema::{odoo_databases, sms_messages, sms_registrations, sms_reports};
use super::{Store, read_tx, write_tx};
use crate::ledger::ops;
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::token::new_transaction_token;
use crate::ledger::{AccountId, LedgerError, Timestamp};
use crate::sms::outbox::{NewSms, Plan, Queued, SmsKind, SmsStatus, Stored, plan};
use crate::sms::status::Failure;
use crate::sms::text::Encoding;
use crate::sms::{SmsMessageId, SmsReportId};

/// The columns a message has while queued, from what the use case decided: written
/// when it is first queued and when it goes again.
macro_rules! queued_columns {
    ($m:expr, $hold_key:expr, $now:expr, $give_up_at:expr) => {
        (
            sms_messages::number.eq(&$m.number),
            sms_messages::content.eq(&$m.content),
            sms_messages::encoding.eq($m.encoding.as_str()),
            sms_messages::segments.eq(i32::try_from($m.segments).unwrap_or(i32::MAX)),
            sms_messages::country.eq(&$m.country),
            sms_messages::price.eq($m.price.units()),
            sms_messages::hold_key.eq($hold_key),
            sms_messages::sender.eq(&$m.sender),
            sms_messages::webhook_url.eq(&$m.webhook_url),
            sms_messages::status.eq(SmsStatus::Queued.as_str()),
            sms_messages::next_attempt_at.eq($now.micros()),
            sms_messages::give_up_at.eq($give_up_at.micros()),
        )
    };
}

/// A message the worker hands to the gateway.
#[derive(Clone, Debug)]
pub struct SmsJob {
    pub id: SmsMessageId,
    pub uuid: String,
    pub number: String,
    pub content: String,
    pub encoding: Encoding,
    pub segments: u32,
    pub sender: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub give_up_at: Timestamp,
}

/// A message as a receipt finds it.
#[derive(Clone, Debug)]
pub struct SmsByRef {
    pub id: SmsMessageId,
    pub status: SmsStatus,
    pub failure: Option<String>,
}

/// A change the use case decided for one message, applied only while the message is
/// still in `from` (a concurrent change wins, and this one is dropped).
#[derive(Clone, Debug)]
pub struct SmsChange<'a> {
    pub id: SmsMessageId,
    pub from: SmsStatus,
    pub to: SmsStatus,
    pub failure: Option<Failure>,
    pub detail: Option<&'a str>,
    /// What Odoo is told, if it asked for reports.
    pub report: Option<&'static str>,
}

/// Delivery reports for one Odoo, oldest first.
#[derive(Clone, Debug)]
pub struct ReportJob {
    pub webhook_url: String,
    /// The Odoo database's name when it is registered with the bridge (sent as
    /// `X-Odoo-Database`, which Odoo 19 reads on a multi-database server).
    pub database: Option<String>,
    /// (report id, uuid, sms_status), in id order.
    pub items: Vec<(SmsReportId, String, String)>,
    /// Attempts so far of the oldest report, this one included.
    pub attempts: i32,
    pub created_at: Timestamp,
}

/// An account's registration, as the use case reads it.
#[derive(Clone, Debug, Default)]
pub struct SmsRegistration {
    pub phone: Option<String>,
    pub code_hash: Option<String>,
    pub code_expires_at: Option<Timestamp>,
    pub failed_attempts: i32,
    pub codes_sent: i32,
    pub codes_window_start: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
    pub sender_name: Option<String>,
}

/// Counts per day for an account's page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SmsDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub queued: i64,
    pub submitted: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Credits consumed (units of 1/10000).
    pub spent: i64,
}

/// A queued message's hold, report URL, database and uuid.
type PayingRow = (Option<String>, Option<String>, Option<String>, String);

type JobRow = (
    SmsMessageId,
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
    i32,
    i64,
);

fn job(row: JobRow) -> Result<SmsJob, LedgerError> {
    let (id, uuid, number, content, encoding, segments, sender, attempts, give_up_at) = row;
    Ok(SmsJob {
        id,
        uuid,
        number,
        content,
        encoding: Encoding::parse(&encoding).ok_or_else(|| {
            LedgerError::from(crate::ledger::StorageError::failed(format!(
                "corrupt sms encoding {encoding:?}"
            )))
        })?,
        segments: u32::try_from(segments).unwrap_or(1),
        sender,
        attempts,
        give_up_at: Timestamp::from_micros(give_up_at),
    })
}

/// A stored status, read back.
fn sms_status(text: &str) -> Result<SmsStatus, LedgerError> {
    SmsStatus::parse(text).ok_or_else(|| {
        LedgerError::from(crate::ledger::StorageError::failed(format!(
            "corrupt sms status {text:?}"
        )))
    })
}

impl Store {
    /// Queues a send call's messages for one account in one transaction: each new uuid
    /// gets a hold of its price (until `hold_until`, all of the call's holds under one
    /// lock of the account) and an outbox row; a known uuid is answered from its row.
    /// Nothing is written when the transaction cannot commit before `deadline`: the
    /// caller is then answered an error and must find nothing applied.
    pub fn sms_queue(
        &self,
        account_id: AccountId,
        messages: &[NewSms],
        give_up_at: Timestamp,
        hold_until: Timestamp,
        deadline: Instant,
    ) -> Result<Vec<Queued>, LedgerError> {
        let now = self.now();
        write_tx!(self, |c| {
            let mut plans = Vec::with_capacity(messages.len());
            let mut seen = std::collections::HashSet::new();
            for m in messages {
                let known: Option<(SmsMessageId, String, Option<String>, bool)> =
                    sms_messages::table
                        .filter(sms_messages::account_id.eq(account_id))
                        .filter(sms_messages::uuid.eq(&m.uuid))
                        .select((
                            sms_messages::id,
                            sms_messages::status,
                            sms_messages::failure,
                            sms_messages::refunded,
                        ))
                        .first(c)
                        .optional()?;
                let (id, stored) = match known {
                    Some((id, status, failure, refunded)) => (
                        Some(id),
                        Some(Stored {
                            status: sms_status(&status)?,
                            failure,
                            refunded,
                        }),
                    ),
                    None => (None, None),
                };
                let repeated = !seen.insert(m.uuid.as_str());
                plans.push((plan(stored, repeated), id));
            }
            // The holds of the paid messages to write, in the call's order.
            let keys: Vec<Option<String>> = messages
                .iter()
                .zip(&plans)
                .map(|(m, (plan, _))| match plan {
                    Plan::Answer(_) => None,
                    _ if m.price.is_zero() => None,
                    _ => Some(new_transaction_token(now.micros()).1),
                })
                .collect();
            let descriptions: Vec<String> = messages
                .iter()
                .map(|m| format!("SMS to {} ({} segments)", m.number, m.segments))
                .collect();
            let requests: Vec<ops::HoldRequest<'_>> = messages
                .iter()
                .zip(&keys)
                .zip(&descriptions)
                .filter_map(|((m, key), description)| {
                    key.as_deref().map(|token_hash| ops::HoldRequest {
                        amount: m.price,
                        token_hash,
                        description: Some(description),
                    })
                })
                .collect();
            let mut holds = if requests.is_empty() {
                Vec::new()
            } else {
                ops::authorize_each(c, account_id, &requests, hold_until, now)?
            }
            .into_iter();
            let mut outcomes = Vec::with_capacity(messages.len());
            for ((m, (plan, id)), key) in messages.iter().zip(plans).zip(&keys) {
                if let Plan::Answer(known) = plan {
                    outcomes.push(known);
                    continue;
                }
                if key.is_some() && holds.next().flatten().is_none() {
                    outcomes.push(Queued::Insufficient);
                    continue;
                }
                let hold_key = key.clone();
                if let (Plan::SendAgain, Some(id)) = (plan, id) {
                    diesel::update(sms_messages::table.find(id))
                        .set((
                            queued_columns!(m, &hold_key, now, give_up_at),
                            (
                                sms_messages::failure.eq(None::<String>),
                                sms_messages::refunded.eq(false),
                                sms_messages::attempts.eq(0),
                                sms_messages::claimed_until.eq(0),
                                sms_messages::gateway.eq(None::<String>),
                                sms_messages::gateway_ref.eq(None::<String>),
                                sms_messages::submitted_at.eq(None::<i64>),
                                sms_messages::done_at.eq(None::<i64>),
                            ),
                        ))
                        .execute(c)?;
                } else {
                    c.insert_message(account_id, m, hold_key.as_deref(), now, give_up_at)?;
                }
                outcomes.push(Queued::New);
            }
            if Instant::now() >= deadline {
                return Err(LedgerError::from(crate::ledger::StorageError::unavailable(
                    "the send call could not be written before its deadline",
                )));
            }
            Ok(outcomes)
        })
    }

    /// Claims up to `limit` due messages for `lease_micros` (a worker that dies lets
    /// them lapse back) and counts the attempt.
    pub fn sms_claim(&self, limit: i64, lease_micros: i64) -> Result<Vec<SmsJob>, LedgerError> {
        let now = self.now().micros();
        let rows: Vec<JobRow> = write_tx!(self, |c| {
            let ids = c.due_sms(now, limit)?;
            if ids.is_empty() {
                return Ok::<_, LedgerError>(Vec::new());
            }
            diesel::update(sms_messages::table.filter(sms_messages::id.eq_any(&ids)))
                .set((
                    sms_messages::claimed_until.eq(now.saturating_add(lease_micros)),
                    sms_messages::attempts.eq(sms_messages::attempts + 1),
                ))
                .execute(c)?;
            Ok(sms_messages::table
                .filter(sms_messages::id.eq_any(&ids))
                .order(sms_messages::id)
                .select((
                    sms_messages::id,
                    sms_messages::uuid,
                    sms_messages::number,
                    sms_messages::content,
                    sms_messages::encoding,
                    sms_messages::segments,
                    sms_messages::sender,
                    sms_messages::attempts,
                    sms_messages::give_up_at,
                ))
                .load::<JobRow>(c)?)
        })?;
        rows.into_iter().map(job).collect()
    }

    /// Gives claimed messages back unattempted (a stopping worker's): the next worker
    /// takes them at once, and the attempt is not counted.
    pub fn sms_release(&self, ids: &[SmsMessageId]) -> Result<(), LedgerError> {
        write_tx!(self, |c| {
            diesel::update(
                sms_messages::table
                    .filter(sms_messages::id.eq_any(ids))
                    .filter(sms_messages::status.eq(SmsStatus::Queued.as_str())),
            )
            .set((
                sms_messages::claimed_until.eq(0),
                sms_messages::attempts.eq(sms_messages::attempts - 1),
            ))
            .execute(c)
        })?;
        Ok(())
    }

    /// The gateway took a queued message: its hold is captured, Odoo is told `sent`.
    pub fn sms_submitted(
        &self,
        id: SmsMessageId,
        gateway: &str,
        gateway_ref: &str,
    ) -> Result<bool, LedgerError> {
        let now = self.now();
        write_tx!(self, |c| {
            let row: Option<PayingRow> = c.queued_row(id)?;
            let Some((hold_key, webhook_url, dbuuid, uuid)) = row else {
                return Ok(false);
            };
            if let Some(key) = &hold_key {
                ops::capture(c, key, None, None, now)?;
            }
            diesel::update(sms_messages::table.find(id))
                .set((
                    sms_messages::status.eq(SmsStatus::Submitted.as_str()),
                    sms_messages::gateway.eq(gateway),
                    sms_messages::gateway_ref.eq(gateway_ref),
                    sms_messages::submitted_at.eq(now.micros()),
                    sms_messages::claimed_until.eq(0),
                    sms_messages::last_error.eq(None::<String>),
                ))
                .execute(c)?;
            if let Some(url) = webhook_url {
                queue_report(c, id, &url, dbuuid.as_deref(), &uuid, "sent", now)?;
            }
            Ok(true)
        })
    }

    /// A queued message fails for good: its hold is released (the credits come back),
    /// Odoo is told `failure`.
    pub fn sms_give_up(
        &self,
        id: SmsMessageId,
        failure: Failure,
        error: &str,
    ) -> Result<bool, LedgerError> {
        let now = self.now();
        let error: String = error.chars().take(1000).collect();
        write_tx!(self, |c| {
            let row: Option<PayingRow> = c.queued_row(id)?;
            let Some((hold_key, webhook_url, dbuuid, uuid)) = row else {
                return Ok(false);
            };
            if let Some(key) = &hold_key {
                ops::cancel(c, key, None, now)?;
            }
            diesel::update(sms_messages::table.find(id))
                .set((
                    sms_messages::status.eq(SmsStatus::Failed.as_str()),
                    sms_messages::failure.eq(failure.as_str()),
                    sms_messages::refunded.eq(hold_key.is_some()),
                    sms_messages::done_at.eq(now.micros()),
                    sms_messages::claimed_until.eq(0),
                    sms_messages::last_error.eq(&error),
                ))
                .execute(c)?;
            if let Some(url) = webhook_url {
                queue_report(c, id, &url, dbuuid.as_deref(), &uuid, failure.as_str(), now)?;
            }
            Ok(true)
        })
    }

    /// A failed attempt of a queued message, tried again at `retry_at`.
    pub fn sms_retry(
        &self,
        id: SmsMessageId,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), LedgerError> {
        let error: String = error.chars().take(1000).collect();
        write_tx!(self, |c| {
            diesel::update(
                sms_messages::table
                    .find(id)
                    .filter(sms_messages::status.eq(SmsStatus::Queued.as_str())),
            )
            .set((
                sms_messages::last_error.eq(&error),
                sms_messages::next_attempt_at.eq(retry_at.micros()),
                sms_messages::claimed_until.eq(0),
            ))
            .execute(c)
        })?;
        Ok(())
    }

    /// The message a gateway's reference names.
    pub fn sms_by_ref(
        &self,
        gateway: &str,
        gateway_ref: &str,
    ) -> Result<Option<SmsByRef>, LedgerError> {
        let row: Option<(SmsMessageId, String, Option<String>)> = read_tx!(self, |c| {
            sms_messages::table
                .filter(sms_messages::gateway.eq(gateway))
                .filter(sms_messages::gateway_ref.eq(gateway_ref))
                .select((
                    sms_messages::id,
                    sms_messages::status,
                    sms_messages::failure,
                ))
                .first(c)
                .optional()
        })?;
        row.map(|(id, status, failure)| {
            Ok(SmsByRef {
                id,
                status: sms_status(&status)?,
                failure,
            })
        })
        .transpose()
    }

    /// Applies a change the use case decided; `false` when the message had moved on.
    pub fn sms_change(&self, change: &SmsChange<'_>) -> Result<bool, LedgerError> {
        let now = self.now();
        let detail: Option<String> = change.detail.map(|d| d.chars().take(1000).collect());
        write_tx!(self, |c| {
            let row: Option<(Option<String>, Option<String>, String)> = sms_messages::table
                .find(change.id)
                .filter(sms_messages::status.eq(change.from.as_str()))
                .select((
                    sms_messages::webhook_url,
                    sms_messages::dbuuid,
                    sms_messages::uuid,
                ))
                .first(c)
                .optional()?;
            let Some((webhook_url, dbuuid, uuid)) = row else {
                return Ok(false);
            };
            diesel::update(sms_messages::table.find(change.id))
                .set((
                    sms_messages::status.eq(change.to.as_str()),
                    sms_messages::failure.eq(change.failure.map(Failure::as_str)),
                    sms_messages::done_at.eq(now.micros()),
                    sms_messages::last_error.eq(&detail),
                ))
                .execute(c)?;
            if let (Some(url), Some(word)) = (webhook_url, change.report) {
                queue_report(c, change.id, &url, dbuuid.as_deref(), &uuid, word, now)?;
            }
            Ok(true)
        })
    }

    /// Claims the due reports of up to `urls` Odoo servers, at most `per_url` each, for
    /// `lease_micros`. A server's reports go in id order: one whose oldest report is
    /// waiting to be retried gets none of its newer ones either.
    pub fn sms_claim_reports(
        &self,
        urls: usize,
        per_url: usize,
        lease_micros: i64,
    ) -> Result<Vec<ReportJob>, LedgerError> {
        type Row = (
            SmsReportId,
            String,
            Option<String>,
            String,
            String,
            i32,
            i64,
            i64,
            i64,
        );
        let now = self.now().micros();
        write_tx!(self, |c| {
            let pending: Vec<Row> =
                c.pending_reports(i64::try_from(urls * per_url * 4).unwrap_or(i64::MAX))?;
            let mut jobs: Vec<ReportJob> = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            for (id, url, dbuuid, uuid, status, attempts, next_at, claimed, created) in pending {
                let first_of_url = !seen.contains(&url);
                if first_of_url {
                    seen.push(url.clone());
                    if next_at > now || claimed >= now || jobs.len() >= urls {
                        continue;
                    }
                    let database = match &dbuuid {
                        Some(d) => odoo_databases::table
                            .filter(odoo_databases::dbuuid.eq(d))
                            .select(odoo_databases::db_name)
                            .first::<String>(c)
                            .optional()?,
                        None => None,
                    };
                    jobs.push(ReportJob {
                        webhook_url: url,
                        database,
                        items: vec![(id, uuid, status)],
                        attempts: attempts + 1,
                        created_at: Timestamp::from_micros(created),
                    });
                } else if let Some(job) = jobs.iter_mut().find(|j| j.webhook_url == url)
                    && job.items.len() < per_url
                {
                    job.items.push((id, uuid, status));
                }
            }
            let ids: Vec<SmsReportId> = jobs
                .iter()
                .flat_map(|j| j.items.iter().map(|i| i.0))
                .collect();
            if !ids.is_empty() {
                diesel::update(sms_reports::table.filter(sms_reports::id.eq_any(&ids)))
                    .set((
                        sms_reports::claimed_until.eq(now.saturating_add(lease_micros)),
                        sms_reports::attempts.eq(sms_reports::attempts + 1),
                    ))
                    .execute(c)?;
            }
            Ok(jobs)
        })
    }

    /// Reports Odoo took (`sent`) or that will never be sent (`dropped`).
    pub fn sms_reports_done(
        &self,
        ids: &[SmsReportId],
        dropped: Option<&str>,
    ) -> Result<(), LedgerError> {
        let now = self.now().micros();
        let error: Option<String> = dropped.map(|d| d.chars().take(1000).collect());
        write_tx!(self, |c| {
            diesel::update(sms_reports::table.filter(sms_reports::id.eq_any(ids)))
                .set((
                    sms_reports::status.eq(if dropped.is_some() { "dropped" } else { "sent" }),
                    sms_reports::sent_at.eq(now),
                    sms_reports::claimed_until.eq(0),
                    sms_reports::last_error.eq(&error),
                ))
                .execute(c)
        })?;
        Ok(())
    }

    /// A failed report call: these reports, and every newer one to the same server, wait
    /// until `retry_at` (so none overtakes them).
    pub fn sms_reports_retry(
        &self,
        webhook_url: &str,
        ids: &[SmsReportId],
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), LedgerError> {
        let error: String = error.chars().take(1000).collect();
        write_tx!(self, |c| {
            diesel::update(sms_reports::table.filter(sms_reports::id.eq_any(ids)))
                .set((
                    sms_reports::last_error.eq(&error),
                    sms_reports::claimed_until.eq(0),
                ))
                .execute(c)?;
            diesel::update(
                sms_reports::table
                    .filter(sms_reports::webhook_url.eq(webhook_url))
                    .filter(sms_reports::status.eq("pending")),
            )
            .set(sms_reports::next_attempt_at.eq(retry_at.micros()))
            .execute(c)
        })?;
        Ok(())
    }

    /// An account's registration, if it started one.
    pub fn sms_registration(
        &self,
        account_id: AccountId,
    ) -> Result<Option<SmsRegistration>, LedgerError> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<i64>,
            i32,
            i32,
            i64,
            Option<i64>,
            Option<String>,
        );
        let row: Option<Row> = read_tx!(self, |c| {
            sms_registrations::table
                .find(account_id)
                .select((
                    sms_registrations::phone,
                    sms_registrations::code_hash,
                    sms_registrations::code_expires_at,
                    sms_registrations::failed_attempts,
                    sms_registrations::codes_sent,
                    sms_registrations::codes_window_start,
                    sms_registrations::verified_at,
                    sms_registrations::sender_name,
                ))
                .first(c)
                .optional()
        })?;
        Ok(row.map(
            |(phone, code_hash, expires, failed, sent, window, verified, sender)| SmsRegistration {
                phone,
                code_hash,
                code_expires_at: expires.map(Timestamp::from_micros),
                failed_attempts: failed,
                codes_sent: sent,
                codes_window_start: Some(Timestamp::from_micros(window)).filter(|t| t.micros() > 0),
                verified_at: verified.map(Timestamp::from_micros),
                sender_name: sender,
            },
        ))
    }

    /// Saves a registration as the use case left it, and queues `code_message` (the
    /// verification SMS) with it in one transaction.
    pub fn sms_save_registration(
        &self,
        account_id: AccountId,
        registration: &SmsRegistration,
        code_message: Option<&NewSms>,
    ) -> Result<(), LedgerError> {
        let now = self.now();
        let values = (
            sms_registrations::phone.eq(&registration.phone),
            sms_registrations::code_hash.eq(&registration.code_hash),
            sms_registrations::code_expires_at
                .eq(registration.code_expires_at.map(Timestamp::micros)),
            sms_registrations::failed_attempts.eq(registration.failed_attempts),
            sms_registrations::codes_sent.eq(registration.codes_sent),
            sms_registrations::codes_window_start
                .eq(registration.codes_window_start.map_or(0, Timestamp::micros)),
            sms_registrations::verified_at.eq(registration.verified_at.map(Timestamp::micros)),
            sms_registrations::sender_name.eq(&registration.sender_name),
            sms_registrations::updated_at.eq(now.micros()),
        );
        write_tx!(self, |c| {
            diesel::insert_into(sms_registrations::table)
                .values((sms_registrations::account_id.eq(account_id), values))
                .on_conflict(sms_registrations::account_id)
                .do_update()
                .set(values)
                .execute(c)?;
            if let Some(m) = code_message {
                c.insert_message(account_id, m, None, now, now.plus_hours(1))?;
            }
            Ok::<_, LedgerError>(())
        })
    }

    /// Sender names registered by the accounts of `token_hash` (every service), for
    /// `get-accounts-information`: (account id, verified, sender name).
    pub fn sms_registrations_of(
        &self,
        account_ids: &[AccountId],
    ) -> Result<Vec<(AccountId, bool, Option<String>)>, LedgerError> {
        let rows: Vec<(AccountId, Option<i64>, Option<String>)> = read_tx!(self, |c| {
            sms_registrations::table
                .filter(sms_registrations::account_id.eq_any(account_ids))
                .select((
                    sms_registrations::account_id,
                    sms_registrations::verified_at,
                    sms_registrations::sender_name,
                ))
                .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, verified, sender)| (id, verified.is_some(), sender))
            .collect())
    }

    /// An account's messages per day, newest day first, over `days` days.
    pub fn sms_days(&self, account_id: AccountId, days: i64) -> Result<Vec<SmsDay>, LedgerError> {
        let since = self
            .now()
            .micros()
            .saturating_sub(days.saturating_mul(MICROS_PER_DAY));
        let rows: Vec<(i64, String, i64)> = read_tx!(self, |c| {
            sms_messages::table
                .filter(sms_messages::account_id.eq(account_id))
                .filter(sms_messages::kind.eq(SmsKind::Odoo.as_str()))
                .filter(sms_messages::created_at.ge(since))
                .select((
                    sms_messages::created_at,
                    sms_messages::status,
                    sms_messages::price,
                ))
                .load(c)
        })?;
        let mut out: Vec<SmsDay> = Vec::new();
        for (created, status, price) in rows {
            let day = Timestamp::from_micros(created).day();
            let entry = match out.iter_mut().find(|d| d.day == day) {
                Some(entry) => entry,
                None => {
                    out.push(SmsDay {
                        day,
                        queued: 0,
                        submitted: 0,
                        delivered: 0,
                        failed: 0,
                        spent: 0,
                    });
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            match sms_status(&status)? {
                SmsStatus::Queued => entry.queued += 1,
                SmsStatus::Submitted => entry.submitted += 1,
                SmsStatus::Delivered => entry.delivered += 1,
                SmsStatus::Failed => entry.failed += 1,
            }
            if !matches!(sms_status(&status)?, SmsStatus::Queued | SmsStatus::Failed) {
                entry.spent += price;
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.day));
        Ok(out)
    }

    /// Accounts holding messages, for operators: the outbox's size by status.
    pub fn sms_totals(&self) -> Result<Vec<(String, i64)>, LedgerError> {
        let rows: Vec<(String, i64)> = read_tx!(self, |c| {
            sms_messages::table
                .group_by(sms_messages::status)
                .select((sms_messages::status, diesel::dsl::count_star()))
                .load(c)
        })?;
        Ok(rows)
    }
}

/// The rows a report is, with what its message says.
struct ReportRow<'a> {
    message_id: SmsMessageId,
    url: &'a str,
    dbuuid: Option<&'a str>,
    uuid: &'a str,
    word: &'a str,
}

/// A pending report as the claim reads it.
type PendingReport = (
    SmsReportId,
    String,
    Option<String>,
    String,
    String,
    i32,
    i64,
    i64,
    i64,
);

/// Writes SMS rows on either backend's connection, inside the caller's transaction.
trait WriteSms {
    fn insert_report(&mut self, row: &ReportRow<'_>, now: i64) -> QueryResult<usize>;
    /// Due queued messages. PostgreSQL skips rows another worker has locked, so
    /// replicas share the outbox and never claim the same message (SQLite's BEGIN
    /// IMMEDIATE already made this connection the only writer).
    fn due_sms(&mut self, now: i64, limit: i64) -> QueryResult<Vec<SmsMessageId>>;
    /// Pending reports, oldest first. PostgreSQL locks them and waits for another
    /// worker's claim rather than skip: a skipped report would let a newer one to the
    /// same Odoo overtake it.
    fn pending_reports(&mut self, limit: i64) -> QueryResult<Vec<PendingReport>>;
    /// A message still queued: its hold, report URL, database and uuid.
    fn queued_row(&mut self, id: SmsMessageId) -> QueryResult<Option<PayingRow>>;
    fn insert_message(
        &mut self,
        account_id: AccountId,
        m: &NewSms,
        hold_key: Option<&str>,
        now: Timestamp,
        give_up_at: Timestamp,
    ) -> QueryResult<usize>;
}

macro_rules! due_sms_query {
    ($now:expr, $limit:expr) => {
        sms_messages::table
            .filter(sms_messages::status.eq(SmsStatus::Queued.as_str()))
            .filter(sms_messages::next_attempt_at.le($now))
            .filter(sms_messages::claimed_until.lt($now))
            .order(sms_messages::id)
            .limit($limit)
            .select(sms_messages::id)
    };
}

macro_rules! pending_reports_query {
    ($limit:expr) => {
        sms_reports::table
            .filter(sms_reports::status.eq("pending"))
            .order(sms_reports::id)
            .limit($limit)
            .select((
                sms_reports::id,
                sms_reports::webhook_url,
                sms_reports::dbuuid,
                sms_reports::uuid,
                sms_reports::sms_status,
                sms_reports::attempts,
                sms_reports::next_attempt_at,
                sms_reports::claimed_until,
                sms_reports::created_at,
            ))
    };
}

macro_rules! shared_sms_writes {
    () => {
        fn insert_message(
            &mut self,
            account_id: AccountId,
            m: &NewSms,
            hold_key: Option<&str>,
            now: Timestamp,
            give_up_at: Timestamp,
        ) -> QueryResult<usize> {
            diesel::insert_into(sms_messages::table)
                .values((
                    (
                        sms_messages::account_id.eq(account_id),
                        sms_messages::kind.eq(m.kind.as_str()),
                        sms_messages::uuid.eq(&m.uuid),
                        sms_messages::dbuuid.eq(&m.dbuuid),
                        sms_messages::created_at.eq(now.micros()),
                    ),
                    queued_columns!(m, hold_key, now, give_up_at),
                ))
                .execute(self)
        }

        fn queued_row(&mut self, id: SmsMessageId) -> QueryResult<Option<PayingRow>> {
            sms_messages::table
                .find(id)
                .filter(sms_messages::status.eq(SmsStatus::Queued.as_str()))
                .select((
                    sms_messages::hold_key,
                    sms_messages::webhook_url,
                    sms_messages::dbuuid,
                    sms_messages::uuid,
                ))
                .first(self)
                .optional()
        }

        fn insert_report(&mut self, row: &ReportRow<'_>, now: i64) -> QueryResult<usize> {
            diesel::insert_into(sms_reports::table)
                .values((
                    sms_reports::message_id.eq(row.message_id),
                    sms_reports::webhook_url.eq(row.url),
                    sms_reports::dbuuid.eq(row.dbuuid),
                    sms_reports::uuid.eq(row.uuid),
                    sms_reports::sms_status.eq(row.word),
                    sms_reports::next_attempt_at.eq(now),
                    sms_reports::created_at.eq(now),
                ))
                .execute(self)
        }
    };
}

impl WriteSms for diesel::SqliteConnection {
    shared_sms_writes!();

    fn due_sms(&mut self, now: i64, limit: i64) -> QueryResult<Vec<SmsMessageId>> {
        due_sms_query!(now, limit).load(self)
    }

    fn pending_reports(&mut self, limit: i64) -> QueryResult<Vec<PendingReport>> {
        pending_reports_query!(limit).load(self)
    }
}

impl WriteSms for diesel::PgConnection {
    shared_sms_writes!();

    fn due_sms(&mut self, now: i64, limit: i64) -> QueryResult<Vec<SmsMessageId>> {
        due_sms_query!(now, limit)
            .for_update()
            .skip_locked()
            .load(self)
    }

    fn pending_reports(&mut self, limit: i64) -> QueryResult<Vec<PendingReport>> {
        pending_reports_query!(limit).for_update().load(self)
    }
}

/// Queues one delivery report in the caller's transaction.
fn queue_report(
    c: &mut impl WriteSms,
    message_id: SmsMessageId,
    url: &str,
    dbuuid: Option<&str>,
    uuid: &str,
    word: &str,
    now: Timestamp,
) -> Result<(), LedgerError> {
    c.insert_report(
        &ReportRow {
            message_id,
            url,
            dbuuid,
            uuid,
            word,
        },
        now.micros(),
    )?;
    Ok(())
}
