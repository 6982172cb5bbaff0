//! An account's money as its page shows it: balance, lots, open holds, a page of the
//! journal and the consumption per day, read in one transaction so the figures agree
//! (the balance is the journal's sum, the lots add up to it) even while charges go on.
//! The single reads (`Store::lots`, `Store::journal`…) run the same queries.

use super::rows::{HoldRow, JournalRow, LotRow, convert, credits};
use super::schema::{holds, journal, lots};
use super::{Store, read_tx};
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::{
    AccountId, Balance, Credits, EntryKind, Hold, HoldStatus, JournalEntry, LedgerError, Lot,
    Timestamp, ops,
};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Which part of the journal a statement holds.
#[derive(Clone, Copy, Debug)]
pub struct StatementRequest {
    /// Entries before this sequence number (newest first); `None`: the newest.
    pub before_seq: Option<i64>,
    /// Entries on the page.
    pub page: i64,
    /// Consumption per day from this instant on; `None`: not read.
    pub since: Option<Timestamp>,
}

/// An account's money at one instant.
#[derive(Clone, Debug)]
pub struct Statement {
    pub balance: Balance,
    /// Lots with credits left (expired ones included until settled).
    pub lots: Vec<Lot>,
    /// Holds not yet captured, cancelled or closed by expiry.
    pub holds: Vec<Hold>,
    /// Up to `page` entries, newest first.
    pub journal: Vec<JournalEntry>,
    /// Credits captured per UTC day (days since the epoch), oldest first; empty when
    /// not asked for.
    pub daily: Vec<(i64, Credits)>,
}

/// The statement's queries, on either backend's connection, inside the caller's
/// transaction.
pub(super) trait StatementReads {
    fn lots_with_credit(&mut self, account_id: AccountId) -> QueryResult<Vec<Lot>>;
    fn open_holds_of(&mut self, account_id: AccountId) -> QueryResult<Vec<Hold>>;
    fn journal_page(
        &mut self,
        account_id: AccountId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<JournalEntry>>;
    fn consumption_per_day(
        &mut self,
        account_id: AccountId,
        since: Timestamp,
    ) -> QueryResult<Vec<(i64, Credits)>>;
}

macro_rules! statement_reads_for {
    ($conn:ty) => {
        impl StatementReads for $conn {
            fn lots_with_credit(&mut self, account_id: AccountId) -> QueryResult<Vec<Lot>> {
                let rows = lots::table
                    .filter(lots::account_id.eq(account_id))
                    .filter(lots::remaining.gt(0))
                    .order((lots::expires_at, lots::id))
                    .select(LotRow::as_select())
                    .load::<LotRow>(self)?;
                convert(rows)
            }

            fn open_holds_of(&mut self, account_id: AccountId) -> QueryResult<Vec<Hold>> {
                let rows = holds::table
                    .filter(holds::account_id.eq(account_id))
                    .filter(holds::status.eq(HoldStatus::Open.as_str()))
                    .order(holds::id)
                    .select(HoldRow::as_select())
                    .load::<HoldRow>(self)?;
                convert(rows)
            }

            fn journal_page(
                &mut self,
                account_id: AccountId,
                before_seq: Option<i64>,
                limit: i64,
            ) -> QueryResult<Vec<JournalEntry>> {
                let rows = journal::table
                    .filter(journal::account_id.eq(account_id))
                    .filter(journal::seq.lt(before_seq.unwrap_or(i64::MAX)))
                    .order(journal::seq.desc())
                    .limit(limit)
                    .select(JournalRow::as_select())
                    .load::<JournalRow>(self)?;
                convert(rows)
            }

            fn consumption_per_day(
                &mut self,
                account_id: AccountId,
                since: Timestamp,
            ) -> QueryResult<Vec<(i64, Credits)>> {
                let day = format!("journal.effective_at / {MICROS_PER_DAY}");
                let rows = journal::table
                    .filter(journal::account_id.eq(account_id))
                    .filter(journal::kind.eq(EntryKind::Capture.as_str()))
                    .filter(journal::effective_at.ge(since.micros()))
                    .group_by(sql::<BigInt>(&day))
                    .select((
                        sql::<BigInt>(&day),
                        sql::<BigInt>("CAST(SUM(-journal.amount) AS BIGINT)"),
                    ))
                    .order(sql::<BigInt>(&day))
                    .load::<(i64, i64)>(self)?;
                rows.into_iter()
                    .map(|(d, units)| Ok((d, credits(units)?)))
                    .collect()
            }
        }
    };
}

statement_reads_for!(diesel::SqliteConnection);

statement_reads_for!(diesel::PgConnection);

impl Store {
    /// The account's money as of now, in one read transaction.
    pub fn statement(
        &self,
        account_id: AccountId,
        request: &StatementRequest,
    ) -> Result<Statement, LedgerError> {
        let now = self.now();
        read_tx!(self, |c| {
            Ok::<_, LedgerError>(Statement {
                balance: ops::balance(c, account_id, now)?,
                lots: c.lots_with_credit(account_id)?,
                holds: c.open_holds_of(account_id)?,
                journal: c.journal_page(account_id, request.before_seq, request.page)?,
                daily: match request.since {
                    Some(since) => c.consumption_per_day(account_id, since)?,
                    None => Vec::new(),
                },
            })
        })
    }

    /// Lots with credits left (expired ones included until settled).
    pub fn lots(&self, account_id: AccountId) -> Result<Vec<Lot>, LedgerError> {
        Ok(read_tx!(self, |c| c.lots_with_credit(account_id))?)
    }

    /// Holds not yet captured, cancelled or closed by expiry.
    pub fn open_holds(&self, account_id: AccountId) -> Result<Vec<Hold>, LedgerError> {
        Ok(read_tx!(self, |c| c.open_holds_of(account_id))?)
    }

    /// Journal entries, newest first, strictly before `before_seq` when given.
    pub fn journal(
        &self,
        account_id: AccountId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, LedgerError> {
        Ok(read_tx!(self, |c| c.journal_page(account_id, before_seq, limit))?)
    }
}
