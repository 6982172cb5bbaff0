//! The console's overview: daily totals rolled up, figures of the day.

use super::rows::{AccountRow, ServiceRow, credits};
use super::schema::{accounts, daily_totals, daily_totals_state, services};
use super::{Store, read_one, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::{Account, Credits, EntryKind, Service, ServiceId};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

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

/// The journal kinds counted as sold.
pub(super) const SOLD_KINDS: [EntryKind; 3] =
    [EntryKind::Grant, EntryKind::Topup, EntryKind::Trial];

/// The `daily_totals` kind of holds opened (not a journal kind).
pub(super) const HOLD: &str = "hold";

/// A time range in microseconds: `from` inclusive, `until` exclusive (`None`: no end, so
/// an entry dated a little ahead by a replica's clock still counts).
#[derive(Clone, Copy)]
pub(super) struct DayRange {
    pub(super) from: i64,
    pub(super) until: Option<i64>,
}

/// One (day, service, kind) total.
#[derive(Debug, diesel::QueryableByName)]
pub(super) struct DayTotal {
    #[diesel(sql_type = BigInt)]
    pub(super) day: i64,
    #[diesel(sql_type = BigInt)]
    pub(super) service_id: ServiceId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(super) kind: String,
    #[diesel(sql_type = BigInt)]
    pub(super) amount: i64,
    #[diesel(sql_type = BigInt)]
    pub(super) entries: i64,
}

/// The query summing the journal's sold and consumed entries, and the holds opened, per
/// day, service and kind over `range` (walked through the time indexes). The bounds are
/// integers formatted in, never caller text.
pub(super) fn day_totals_sql(range: DayRange) -> String {
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

impl Store {
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
    fn roll_up_closed_days(&self, closed_before: i64) -> Result<(), AppError> {
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
            Ok::<_, AppError>(())
        })
    }

    /// The overview's figures at `now`, in one consistent snapshot: closed days from
    /// their totals, open days summed live from the journal and the holds.
    pub fn console_overview(&self) -> Result<Overview, AppError> {
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
                .load::<(i64, ServiceId, String, i64, i64)>(c)?
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
            Ok::<_, AppError>((days, near, services))
        })?;

        // [today, 30 days, all time] as (sold, consumed, held) in units; the sums are
        // checked so a corrupt total is an error, never a wrapped figure.
        let overflow = || {
            AppError::from(crate::ledger::StorageError::failed(
                "overview sum overflows",
            ))
        };
        let mut totals = [[0i64; 3]; 3];
        let mut daily: std::collections::BTreeMap<(ServiceId, i64), i64> = Default::default();
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
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(Overview {
            today: totals[0],
            days_30: totals[1],
            all_time: totals[2],
            daily: per_service,
            near_threshold,
        })
    }
}
