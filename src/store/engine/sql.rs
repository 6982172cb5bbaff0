//! The engine's statements: lock a batch's accounts, load an account into memory, reserve
//! hold ids and write a batch. PostgreSQL writes the whole batch in one call of
//! `iap_engine_write` (arrays in, one statement per table); SQLite, in process, row by
//! row with cached statements.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::sqlite::SqliteConnection;

use super::overlay::WriteSet;
use super::state::{AccountState, Cache};
use crate::ledger::repo::{HoldRepo, NewAlert, RepoResult};
use crate::ledger::{
    Account, AccountId, Allocation, Credits, Hold, HoldId, HoldStatus, LotId, Timestamp,
};
use crate::store::accounts::update_account;
use crate::store::rows::{AccountRow, HoldRow, LotRow, convert};
use crate::store::schema::{accounts, holds, lots};

/// A batch's rows as they go to the database, taken from the write-set and memory.
pub(crate) struct Flush {
    pub new_holds: Vec<Hold>,
    pub new_allocations: Vec<Allocation>,
    pub lots: Vec<(LotId, i64)>,
    pub closed: Vec<Hold>,
    pub freed: Vec<HoldId>,
    pub journal: Vec<crate::ledger::JournalEntry>,
    pub alerts: Vec<super::overlay::PendingAlert>,
    /// Saved accounts with the lock_version they get (one more than memory had).
    pub accounts: Vec<(Account, i64)>,
    /// Every account the batch read, with the lock_version memory had: when the batch
    /// ran without locks, the write fails unless the database still has these.
    pub expected: Vec<(AccountId, i64)>,
}

impl Flush {
    pub fn new(writes: WriteSet, cache: &Cache, expected: Vec<(AccountId, i64)>) -> Flush {
        let lots = writes
            .lots
            .iter()
            .filter_map(|(account_id, lot_id)| {
                let lot = cache.get(*account_id)?.lots.get(lot_id)?;
                Some((*lot_id, lot.remaining.units()))
            })
            .collect();
        let accounts = writes
            .accounts
            .iter()
            .filter_map(|id| {
                let state = cache.get(*id)?;
                Some((state.account.clone(), state.version + 1))
            })
            .collect();
        // Writes go in this order on both backends, one statement after the other, so a
        // hold opened and closed in one batch is inserted, then closed.
        Flush {
            new_holds: writes.new_holds,
            new_allocations: writes.new_allocations,
            lots,
            closed: writes.closed,
            freed: writes.freed,
            journal: writes.journal,
            alerts: writes.alerts,
            accounts,
            expected,
        }
    }
}

pub(crate) trait EngineSql: HoldRepo + Sized {
    /// Locks the accounts until commit (in id order) and returns their versions; ids that
    /// do not exist are left out.
    fn lock_versions(&mut self, ids: &[AccountId]) -> RepoResult<Vec<(AccountId, i64)>>;
    /// `n` ids for new holds, never handed out by the database to anyone else.
    fn reserve_hold_ids(&mut self, n: usize) -> RepoResult<Vec<HoldId>>;
    fn load_state(&mut self, id: AccountId) -> RepoResult<Option<AccountState>>;
    fn write(&mut self, flush: &Flush) -> RepoResult<()>;
}

macro_rules! load_state {
    () => {
        fn load_state(&mut self, id: AccountId) -> RepoResult<Option<AccountState>> {
            let Some((row, version)) = accounts::table
                .find(id)
                .select((AccountRow::as_select(), accounts::lock_version))
                .first::<(AccountRow, i64)>(self)
                .optional()?
            else {
                return Ok(None);
            };
            let account = Account::try_from(row)?;
            let open: Vec<Hold> = convert(
                holds::table
                    .filter(holds::account_id.eq(id))
                    .filter(holds::status.eq(HoldStatus::Open.as_str()))
                    .select(HoldRow::as_select())
                    .load::<HoldRow>(self)?,
            )?;
            let hold_ids: Vec<HoldId> = open.iter().map(|h| h.id).collect();
            let allocations = if hold_ids.is_empty() {
                Vec::new()
            } else {
                self.allocations_of(&hold_ids)?
            };
            let allocated: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
            let lot_rows = lots::table
                .filter(lots::account_id.eq(id))
                .filter(lots::remaining.gt(0).or(lots::id.eq_any(&allocated)))
                .select(LotRow::as_select())
                .load::<LotRow>(self)?;
            let mut state = AccountState {
                account,
                version,
                lots: Default::default(),
                open_holds: open.into_iter().map(|h| (h.id, h)).collect(),
                allocations: Default::default(),
                last_used: 0,
            };
            for lot in convert::<_, crate::ledger::Lot>(lot_rows)? {
                state.lots.insert(lot.id, lot);
            }
            for a in allocations {
                state.allocations.entry(a.hold_id).or_default().push(a);
            }
            Ok(Some(state))
        }
    };
}

fn alert<'a>(a: &'a super::overlay::PendingAlert) -> NewAlert<'a> {
    NewAlert {
        account_id: a.account_id,
        recipient: &a.recipient,
        available: a.available,
        threshold: a.threshold,
        created_at: a.created_at,
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl EngineSql for PgConnection {
    fn lock_versions(&mut self, ids: &[AccountId]) -> RepoResult<Vec<(AccountId, i64)>> {
        Ok(accounts::table
            .filter(accounts::id.eq_any(ids))
            .order(accounts::id)
            .select((accounts::id, accounts::lock_version))
            .for_update()
            .load(self)?)
    }

    fn reserve_hold_ids(&mut self, n: usize) -> RepoResult<Vec<HoldId>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let rows: Vec<IdRow> = diesel::sql_query(
            "SELECT nextval(pg_get_serial_sequence('holds', 'id')) AS id \
             FROM generate_series(1, $1)",
        )
        .bind::<BigInt, _>(n)
        .load(self)?;
        Ok(rows
            .into_iter()
            .map(|r| HoldId::from_stored(r.id))
            .collect())
    }

    load_state!();

    fn write(&mut self, f: &Flush) -> RepoResult<()> {
        let h = &f.new_holds;
        let a = &f.new_allocations;
        let c = &f.closed;
        let j = &f.journal;
        let t = &f.accounts;
        // The whole batch in one round trip (see migrations/postgres/*_engine): it locks
        // the accounts in id order, checks their versions, then writes every table.
        diesel::sql_query(
            "SELECT iap_engine_write($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
             $30, $31, $32, $33, $34, $35, $36, $37, $38, $39)",
        )
        .bind::<Array<BigInt>, _>(h.iter().map(|h| h.id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(h.iter().map(|h| h.account_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(h.iter().map(|h| h.token_hash.as_str()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(h.iter().map(|h| h.amount.units()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(h.iter().map(|h| h.status.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(
            h.iter()
                .map(|h| h.captured.map(Credits::units))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            h.iter()
                .map(|h| h.description.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(h.iter().map(|h| h.created_at.micros()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(h.iter().map(|h| h.expires_at.micros()).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(
            h.iter()
                .map(|h| h.closed_at.map(Timestamp::micros))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(a.iter().map(|a| a.hold_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(a.iter().map(|a| a.lot_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(a.iter().map(|a| a.amount.units()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(f.lots.iter().map(|l| l.0).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(f.lots.iter().map(|l| l.1).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(c.iter().map(|h| h.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(c.iter().map(|h| h.status.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(
            c.iter()
                .map(|h| h.captured.map(Credits::units))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<BigInt>>, _>(
            c.iter()
                .map(|h| h.closed_at.map(Timestamp::micros))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(&f.freed)
        .bind::<Array<BigInt>, _>(j.iter().map(|e| e.account_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(j.iter().map(|e| e.seq).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(j.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(j.iter().map(|e| e.amount_units).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            j.iter()
                .map(|e| e.balance_after.units())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<BigInt>>, _>(j.iter().map(|e| e.hold_id).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(j.iter().map(|e| e.lot_id).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            j.iter()
                .map(|e| e.description.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(
            j.iter()
                .map(|e| e.effective_at.micros())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(j.iter().map(|e| e.recorded_at.micros()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(t.iter().map(|(a, _)| a.id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(t.iter().map(|(a, _)| a.balance.units()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            t.iter()
                .map(|(a, _)| a.reserved.units())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(t.iter().map(|(a, _)| a.last_seq).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            t.iter()
                .map(|(a, _)| a.updated_at.micros())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(t.iter().map(|(a, _)| a.alert_armed).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(t.iter().map(|(_, v)| *v).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(f.expected.iter().map(|e| e.0).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(f.expected.iter().map(|e| e.1).collect::<Vec<_>>())
        .execute(self)?;
        // Alerts are rare: one row each, after the accounts they name.
        for a in &f.alerts {
            self.insert_alert(alert(a))?;
        }
        Ok(())
    }
}

impl EngineSql for SqliteConnection {
    fn lock_versions(&mut self, ids: &[AccountId]) -> RepoResult<Vec<(AccountId, i64)>> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        Ok(accounts::table
            .filter(accounts::id.eq_any(ids))
            .order(accounts::id)
            .select((accounts::id, accounts::lock_version))
            .load(self)?)
    }

    fn reserve_hold_ids(&mut self, n: usize) -> RepoResult<Vec<HoldId>> {
        // Under the write lock nobody else inserts: the next ids are free until commit.
        let max: Option<i64> = holds::table
            .select(diesel::dsl::max(holds::id))
            .first(self)?;
        let first = max.unwrap_or(0) + 1;
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Ok((first..first.saturating_add(n))
            .map(HoldId::from_stored)
            .collect())
    }

    load_state!();

    fn write(&mut self, f: &Flush) -> RepoResult<()> {
        for h in &f.new_holds {
            diesel::insert_into(holds::table)
                .values((
                    holds::id.eq(h.id),
                    holds::account_id.eq(h.account_id),
                    holds::token_hash.eq(&h.token_hash),
                    holds::amount.eq(h.amount.units()),
                    holds::status.eq(h.status.as_str()),
                    holds::captured.eq(h.captured.map(Credits::units)),
                    holds::description.eq(h.description.as_deref()),
                    holds::created_at.eq(h.created_at.micros()),
                    holds::expires_at.eq(h.expires_at.micros()),
                    holds::closed_at.eq(h.closed_at.map(Timestamp::micros)),
                ))
                .execute(self)?;
        }
        self.insert_allocations(&f.new_allocations)?;
        for (id, remaining) in &f.lots {
            diesel::update(lots::table.find(id))
                .set(lots::remaining.eq(remaining))
                .execute(self)?;
        }
        for h in &f.closed {
            self.close_hold(
                h.id,
                h.status,
                h.captured,
                h.closed_at.unwrap_or(h.created_at),
            )?;
        }
        for id in &f.freed {
            self.delete_allocations(*id)?;
        }
        for e in &f.journal {
            self.insert_journal(e)?;
        }
        for a in &f.alerts {
            self.insert_alert(alert(a))?;
        }
        // The bump lands on the version `f.accounts` carries: under the write lock the
        // row still has the one memory read (`lock_versions` checked it).
        for (a, _) in &f.accounts {
            update_account(
                accounts::table.find(a.id),
                (
                    accounts::balance.eq(a.balance.units()),
                    accounts::reserved.eq(a.reserved.units()),
                    accounts::last_seq.eq(a.last_seq),
                    accounts::updated_at.eq(a.updated_at.micros()),
                    accounts::alert_armed.eq(a.alert_armed),
                ),
            )
            .execute(self)?;
        }
        Ok(())
    }
}
