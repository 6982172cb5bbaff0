//! The operator's console: server-side sessions opened with an admin token, the audit
//! log, and the overview's figures.
//!
//! Its tables are declared here rather than in `schema.rs`: only this file reads or
//! writes them.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::rows::{AccountRow, ServiceRow, credits};
use super::schema::{accounts, admin_tokens, alert_outbox, services};
use super::{Store, read_one, read_tx, write_tx};
use crate::ledger::token::{constant_time_eq, random_hex, sha256_hex};
use crate::ledger::{Account, Credits, EntryKind, Id, LedgerError, Service, Timestamp};

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        token_id -> BigInt,
        csrf_nonce -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        ended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
    }
}

diesel::table! {
    daily_totals (day, service_id, kind) {
        day -> BigInt,
        service_id -> BigInt,
        kind -> Text,
        amount -> BigInt,
        entries -> BigInt,
    }
}

diesel::table! {
    daily_totals_state (id) {
        id -> Integer,
        closed_before -> BigInt,
    }
}

diesel::joinable!(console_sessions -> admin_tokens (token_id));
diesel::allow_tables_to_appear_in_same_query!(console_sessions, admin_tokens);

use crate::ledger::time::MICROS_PER_DAY;

/// A current console session.
#[derive(Clone, Debug)]
pub struct ConsoleSession {
    /// The admin token's name: the "who" of the audit lines.
    pub token_name: String,
    /// CSRF tokens of the session's forms derive from it.
    pub csrf_nonce: String,
    pub expires_at: Timestamp,
}

impl ConsoleSession {
    /// How audit lines name the operator.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_name)
    }
}

/// One operator action.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditLine {
    pub id: Id,
    /// RFC 3339, UTC.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// `token:<admin token name>`.
    pub actor: String,
    /// e.g. `grant`, `order.confirm`, `service.rotate_key`.
    pub action: String,
    /// What it acted on (`account:7`, `service:sms`, …).
    pub target: String,
    pub detail: String,
}

/// The audit line of an operator action, handed to the store function that performs it:
/// the store writes it in the action's own transaction, so the line exists if and only
/// if the action committed (a refused or failed action leaves none).
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// `token:<admin token name>`.
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: String,
}

/// An audit line whose detail is made, in the action's transaction, from what the action
/// did (its outcome `T`).
pub type AuditWith<'a, T> = (&'a AuditRecord, fn(&T) -> String);

impl AuditRecord {
    /// The same line with `detail` (known only once the action ran, in its transaction).
    pub fn with_detail(&self, detail: String) -> AuditRecord {
        AuditRecord {
            detail,
            ..self.clone()
        }
    }
}

/// An admin token as the console lists it (never its secret or hash).
#[derive(Clone, Debug)]
pub struct AdminTokenInfo {
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Credits sold (grants, top-ups, trials), consumed (captures) and put on hold over a
/// period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sold: Credits,
    pub consumed: Credits,
    pub held: Credits,
}

/// What the console's overview shows.
#[derive(Clone, Debug)]
pub struct Overview {
    pub today: Totals,
    pub days_30: Totals,
    pub all_time: Totals,
    /// Per service: (days since the epoch, credits captured) over the last 30 days.
    pub daily: Vec<(Service, Vec<(i64, Credits)>)>,
    /// Accounts with a threshold whose available credits are under 120 % of it.
    pub near_threshold: Vec<(Account, Service)>,
}

impl Store {
    /// Opens a console session for the admin token `secret`: answers the session's own
    /// secret (for the cookie) and the session, or `None` when the token is unknown or
    /// revoked. The sign-in is audited in the same transaction.
    pub fn open_console_session(
        &self,
        secret: &str,
        ttl_secs: i64,
    ) -> Result<Option<(String, ConsoleSession)>, LedgerError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        let session_secret = random_hex(32);
        let session_hash = sha256_hex(&session_secret);
        let nonce = random_hex(16);
        let expires_at = now.saturating_add(ttl_secs.saturating_mul(1_000_000));
        let opened = write_tx!(self, |c| {
            let token: Option<(Id, String, String)> = admin_tokens::table
                .filter(admin_tokens::token_hash.eq(&hash))
                .filter(admin_tokens::revoked_at.is_null())
                .select((
                    admin_tokens::id,
                    admin_tokens::name,
                    admin_tokens::token_hash,
                ))
                .first(c)
                .optional()?;
            let Some((id, name, _)) = token.filter(|(_, _, h)| constant_time_eq(h, &hash)) else {
                return Ok::<_, LedgerError>(None);
            };
            diesel::insert_into(console_sessions::table)
                .values((
                    console_sessions::id_hash.eq(&session_hash),
                    console_sessions::token_id.eq(id),
                    console_sessions::csrf_nonce.eq(&nonce),
                    console_sessions::created_at.eq(now),
                    console_sessions::expires_at.eq(expires_at),
                ))
                .execute(c)?;
            insert_audit(c, now, &format!("token:{name}"), "sign_in", "console", "")?;
            Ok(Some(name))
        })?;
        Ok(opened.map(|token_name| {
            (
                session_secret,
                ConsoleSession {
                    token_name,
                    csrf_nonce: nonce,
                    expires_at: Timestamp(expires_at),
                },
            )
        }))
    }

    /// The session behind a cookie's secret, if it has not ended, has not expired and
    /// its admin token is not revoked.
    pub fn console_session(&self, secret: &str) -> Result<Option<ConsoleSession>, LedgerError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        let row: Option<(String, String, i64)> = read_tx!(self, |c| {
            console_sessions::table
                .inner_join(admin_tokens::table)
                .filter(console_sessions::id_hash.eq(&hash))
                .filter(console_sessions::ended_at.is_null())
                .filter(console_sessions::expires_at.gt(now))
                .filter(admin_tokens::revoked_at.is_null())
                .select((
                    admin_tokens::name,
                    console_sessions::csrf_nonce,
                    console_sessions::expires_at,
                ))
                .first(c)
                .optional()
        })?;
        Ok(
            row.map(|(token_name, csrf_nonce, expires_at)| ConsoleSession {
                token_name,
                csrf_nonce,
                expires_at: Timestamp(expires_at),
            }),
        )
    }

    /// Ends the session behind `secret` (sign-out); audited.
    pub fn end_console_session(&self, secret: &str, actor: &str) -> Result<(), LedgerError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        write_tx!(self, |c| {
            let n = diesel::update(
                console_sessions::table
                    .filter(console_sessions::id_hash.eq(&hash))
                    .filter(console_sessions::ended_at.is_null()),
            )
            .set(console_sessions::ended_at.eq(now))
            .execute(c)?;
            if n > 0 {
                insert_audit(c, now, actor, "sign_out", "console", "")?;
            }
            Ok::<_, LedgerError>(())
        })
    }

    /// Revokes the admin token `name` and ends its console sessions, audited in the same
    /// transaction; false (and no line) when there is no such active token.
    pub fn revoke_admin_token_and_sessions(
        &self,
        name: &str,
        audit: &AuditRecord,
    ) -> Result<bool, LedgerError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            let ids: Vec<Id> = admin_tokens::table
                .filter(admin_tokens::name.eq(name))
                .filter(admin_tokens::revoked_at.is_null())
                .select(admin_tokens::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok::<_, LedgerError>(false);
            }
            diesel::update(admin_tokens::table.filter(admin_tokens::id.eq_any(&ids)))
                .set(admin_tokens::revoked_at.eq(now))
                .execute(c)?;
            diesel::update(
                console_sessions::table
                    .filter(console_sessions::token_id.eq_any(&ids))
                    .filter(console_sessions::ended_at.is_null()),
            )
            .set(console_sessions::ended_at.eq(now))
            .execute(c)?;
            write_audit_record(c, now, audit)?;
            Ok(true)
        })
    }

    /// Admin tokens, oldest first.
    pub fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>, LedgerError> {
        let rows: Vec<(String, i64, Option<i64>)> = read_tx!(self, |c| {
            admin_tokens::table
                .order(admin_tokens::id)
                .select((
                    admin_tokens::name,
                    admin_tokens::created_at,
                    admin_tokens::revoked_at,
                ))
                .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, created, revoked)| AdminTokenInfo {
                name,
                created_at: Timestamp(created),
                revoked_at: revoked.map(Timestamp),
            })
            .collect())
    }

    /// Audit lines, newest first; `before` pages back from an id.
    pub fn audit_log(&self, limit: i64, before: Option<Id>) -> Result<Vec<AuditLine>, LedgerError> {
        let rows: Vec<(Id, i64, String, String, String, String)> = read_tx!(self, |c| {
            let mut query = audit_log::table
                .order(audit_log::id.desc())
                .limit(limit.clamp(1, 1000))
                .select((
                    audit_log::id,
                    audit_log::at,
                    audit_log::actor,
                    audit_log::action,
                    audit_log::target,
                    audit_log::detail,
                ))
                .into_boxed();
            if let Some(before) = before {
                query = query.filter(audit_log::id.lt(before));
            }
            query.load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, target, detail)| AuditLine {
                id,
                at: Timestamp(at),
                actor,
                action,
                target,
                detail,
            })
            .collect())
    }

    /// Sends a failing alert again at the worker's next round, audited in the same
    /// transaction; false (and no line) when the alert is not waiting to be sent.
    pub fn retry_alert(&self, id: Id, audit: &AuditRecord) -> Result<bool, LedgerError> {
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
            Ok::<_, LedgerError>(n > 0)
        })
    }

    /// How long after a day ends no entry can land in it any more: the call deadline (a
    /// write commits within it of reading its clock, or not at all) plus a minute for
    /// clock skew between replicas. Days that ended longer ago are rolled up.
    pub fn rollup_margin(&self) -> i64 {
        self.rollup_margin_micros
    }

    /// Days before the answer (days since the epoch) are closed at `now`: no entry can
    /// be written into them any more (see [`Store::rollup_margin`]).
    fn closed_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.rollup_margin_micros)
            .div_euclid(MICROS_PER_DAY)
    }

    /// Rolls the days closed since the last call up into `daily_totals`. Their sums are
    /// read outside the write lock (closed days no longer change), so the ledger's
    /// writers wait only for the short insert. Two processes may do it at once: the rows
    /// they compute are the same, the second insert keeps the first.
    fn roll_up_closed_days(&self, closed_before: i64) -> Result<(), LedgerError> {
        let from: i64 = read_one!(self, |c| daily_totals_state::table
            .select(daily_totals_state::closed_before)
            .first(c))?;
        if from >= closed_before {
            return Ok(());
        }
        let range = DayRange {
            from: from.saturating_mul(MICROS_PER_DAY),
            until: Some(closed_before.saturating_mul(MICROS_PER_DAY)),
        };
        let query = day_totals_sql(range);
        let rows: Vec<DayTotal> = read_tx!(self, |c| diesel::sql_query(&query).load(c))?;
        write_tx!(self, |c| {
            for chunk in rows.chunks(500) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|r| {
                        (
                            daily_totals::day.eq(r.day),
                            daily_totals::service_id.eq(r.service_id),
                            daily_totals::kind.eq(&r.kind),
                            daily_totals::amount.eq(r.amount),
                            daily_totals::entries.eq(r.entries),
                        )
                    })
                    .collect();
                diesel::insert_into(daily_totals::table)
                    .values(values)
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            diesel::update(
                daily_totals_state::table
                    .filter(daily_totals_state::closed_before.lt(closed_before)),
            )
            .set(daily_totals_state::closed_before.eq(closed_before))
            .execute(c)?;
            Ok::<_, LedgerError>(())
        })
    }

    /// The overview's figures at `now`, in one consistent snapshot: closed days from
    /// their totals, open days summed live from the journal and the holds.
    pub fn console_overview(&self) -> Result<Overview, LedgerError> {
        let now = self.now().micros();
        let today = now.div_euclid(MICROS_PER_DAY);
        let month = today - 29;
        self.roll_up_closed_days(self.closed_before(now))?;
        type Raw = (
            Vec<DayTotal>,
            Vec<(AccountRow, ServiceRow)>,
            Vec<ServiceRow>,
        );
        let (days, near, services): Raw = read_tx!(self, |c| {
            let closed_before: i64 = daily_totals_state::table
                .select(daily_totals_state::closed_before)
                .first(c)?;
            let mut days: Vec<DayTotal> = daily_totals::table
                .filter(daily_totals::day.lt(closed_before))
                .select((
                    daily_totals::day,
                    daily_totals::service_id,
                    daily_totals::kind,
                    daily_totals::amount,
                    daily_totals::entries,
                ))
                .load::<(i64, i64, String, i64, i64)>(c)?
                .into_iter()
                .map(|(day, service_id, kind, amount, entries)| DayTotal {
                    day,
                    service_id,
                    kind,
                    amount,
                    entries,
                })
                .collect();
            let open_days = day_totals_sql(DayRange {
                from: closed_before.saturating_mul(MICROS_PER_DAY),
                until: None,
            });
            days.extend(diesel::sql_query(open_days).load::<DayTotal>(c)?);
            let near = accounts::table
                .inner_join(services::table)
                .filter(accounts::warning_threshold.gt(0))
                .filter(sql::<diesel::sql_types::Bool>(
                    "(accounts.balance - accounts.reserved) * 5 < accounts.warning_threshold * 6",
                ))
                .order((accounts::balance - accounts::reserved).asc())
                .limit(20)
                .select((AccountRow::as_select(), ServiceRow::as_select()))
                .load::<(AccountRow, ServiceRow)>(c)?;
            let services = services::table
                .order(services::technical_name)
                .select(ServiceRow::as_select())
                .load::<ServiceRow>(c)?;
            Ok::<_, LedgerError>((days, near, services))
        })?;

        // [today, 30 days, all time] as (sold, consumed, held) in units; the sums are
        // checked so a corrupt total is an error, never a wrapped figure.
        let overflow = || {
            LedgerError::from(crate::ledger::StorageError::failed(
                "overview sum overflows",
            ))
        };
        let mut totals = [[0i64; 3]; 3];
        let mut daily: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
        for d in &days {
            let kind = d.kind.as_str();
            let (column, units) = if SOLD_KINDS.iter().any(|k| k.as_str() == kind) {
                (0, d.amount)
            } else if kind == EntryKind::Capture.as_str() {
                (1, d.amount.checked_neg().ok_or_else(overflow)?)
            } else if kind == HOLD {
                (2, d.amount)
            } else {
                continue;
            };
            for (period, since) in [today, month, i64::MIN].into_iter().enumerate() {
                if d.day >= since {
                    let slot = &mut totals[period][column];
                    *slot = slot.checked_add(units).ok_or_else(overflow)?;
                }
            }
            if column == 1 && d.day >= month {
                let slot = daily.entry((d.service_id, d.day)).or_default();
                *slot = slot.checked_add(units).ok_or_else(overflow)?;
            }
        }
        let totals = totals
            .iter()
            .map(|[sold, consumed, held]| {
                Ok(Totals {
                    sold: credits(*sold)?,
                    consumed: credits(*consumed)?,
                    held: credits(*held)?,
                })
            })
            .collect::<Result<Vec<_>, diesel::result::Error>>()?;
        let mut per_service = Vec::new();
        for row in services {
            let service = Service::try_from(row)?;
            let values = daily
                .range((service.id, i64::MIN)..=(service.id, i64::MAX))
                .map(|(&(_, d), &units)| Ok((d, credits(units)?)))
                .collect::<Result<Vec<_>, diesel::result::Error>>()?;
            if !values.is_empty() {
                per_service.push((service, values));
            }
        }
        let near_threshold = near
            .into_iter()
            .map(|(a, s)| Ok((Account::try_from(a)?, Service::try_from(s)?)))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(Overview {
            today: totals[0],
            days_30: totals[1],
            all_time: totals[2],
            daily: per_service,
            near_threshold,
        })
    }
}

/// The journal kinds counted as sold.
const SOLD_KINDS: [EntryKind; 3] = [EntryKind::Grant, EntryKind::Topup, EntryKind::Trial];
/// The `daily_totals` kind of holds opened (not a journal kind).
const HOLD: &str = "hold";

/// A time range in microseconds: `from` inclusive, `until` exclusive (`None`: no end, so
/// an entry dated a little ahead by a replica's clock still counts).
#[derive(Clone, Copy)]
struct DayRange {
    from: i64,
    until: Option<i64>,
}

/// One (day, service, kind) total.
#[derive(Debug, diesel::QueryableByName)]
struct DayTotal {
    #[diesel(sql_type = BigInt)]
    day: i64,
    #[diesel(sql_type = BigInt)]
    service_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    entries: i64,
}

/// The query summing the journal's sold and consumed entries, and the holds opened, per
/// day, service and kind over `range` (walked through the time indexes). The bounds are
/// integers formatted in, never caller text.
fn day_totals_sql(range: DayRange) -> String {
    let until = |column: &str| {
        range
            .until
            .map_or_else(String::new, |u| format!(" AND {column} < {u}"))
    };
    let kinds = SOLD_KINDS
        .iter()
        .chain([&EntryKind::Capture])
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT journal.effective_at / {MICROS_PER_DAY} AS day, accounts.service_id AS service_id, \
                journal.kind AS kind, CAST(SUM(journal.amount) AS BIGINT) AS amount, \
                CAST(COUNT(*) AS BIGINT) AS entries \
         FROM journal JOIN accounts ON accounts.id = journal.account_id \
         WHERE journal.effective_at >= {from}{journal_until} AND journal.kind IN ({kinds}) \
         GROUP BY 1, 2, 3 \
         UNION ALL \
         SELECT holds.created_at / {MICROS_PER_DAY} AS day, accounts.service_id AS service_id, \
                '{HOLD}' AS kind, CAST(SUM(holds.amount) AS BIGINT) AS amount, \
                CAST(COUNT(*) AS BIGINT) AS entries \
         FROM holds JOIN accounts ON accounts.id = holds.account_id \
         WHERE holds.created_at >= {from}{holds_until} \
         GROUP BY 1, 2",
        from = range.from,
        journal_until = until("journal.effective_at"),
        holds_until = until("holds.created_at"),
    )
}

/// Writes an audit line on either backend's connection, inside the caller's transaction.
pub(crate) trait WriteAudit {
    fn write_audit(
        &mut self,
        at: i64,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> QueryResult<usize>;
}

macro_rules! write_audit_for {
    ($conn:ty) => {
        impl WriteAudit for $conn {
            fn write_audit(
                &mut self,
                at: i64,
                actor: &str,
                action: &str,
                target: &str,
                detail: &str,
            ) -> QueryResult<usize> {
                diesel::insert_into(audit_log::table)
                    .values((
                        audit_log::at.eq(at),
                        audit_log::actor.eq(actor),
                        audit_log::action.eq(action),
                        audit_log::target.eq(target),
                        audit_log::detail.eq(detail),
                    ))
                    .execute(self)
            }
        }
    };
}

write_audit_for!(diesel::SqliteConnection);
write_audit_for!(diesel::PgConnection);

fn insert_audit(
    c: &mut impl WriteAudit,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), LedgerError> {
    c.write_audit(at, actor, action, target, detail)?;
    Ok(())
}

/// Writes `record` inside the caller's transaction (the action's own).
pub(crate) fn write_audit_record(
    c: &mut impl WriteAudit,
    at: i64,
    record: &AuditRecord,
) -> Result<(), LedgerError> {
    insert_audit(
        c,
        at,
        &record.actor,
        record.action,
        &record.target,
        &record.detail,
    )
}
