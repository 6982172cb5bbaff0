//! [`HoldRepo`] and [`LedgerRepo`] for both backends: one body of diesel DSL, compiled
//! once per connection type, so the queries are type-checked against SQLite and
//! PostgreSQL alike.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::accounts::{NO_CHANGE, update_account};
use super::rows::{AccountRow, AllocationRow, HoldRow, LotRow, convert, credits};
use super::schema::{accounts, alert_outbox, hold_allocations, holds, journal, lots};
use crate::ledger::repo::{HoldRepo, LedgerRepo, NewAlert, NewHold, NewLot, RepoResult};
use crate::ledger::{
    Account, AccountId, Allocation, Credits, Hold, HoldId, HoldStatus, JournalEntry, Lot, LotId,
    Timestamp,
};

macro_rules! impl_ledger_repo {
    ($conn:ty) => {
        impl HoldRepo for $conn {
            fn lock_account(&mut self, id: AccountId) -> RepoResult<Account> {
                // An UPDATE takes the row lock on PostgreSQL (held to commit) and reads the
                // row in the same round trip; SQLite is already locked by BEGIN IMMEDIATE.
                Ok(update_account(accounts::table.find(id), NO_CHANGE)
                    .returning(AccountRow::as_returning())
                    .get_result::<AccountRow>(self)?
                    .try_into()?)
            }

            fn get_account(&mut self, id: AccountId) -> RepoResult<Option<Account>> {
                Ok(accounts::table
                    .find(id)
                    .select(AccountRow::as_select())
                    .first::<AccountRow>(self)
                    .optional()?
                    .map(Account::try_from)
                    .transpose()?)
            }

            fn save_account_totals(&mut self, a: &Account) -> RepoResult<()> {
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
                Ok(())
            }

            fn insert_alert(&mut self, alert: NewAlert<'_>) -> RepoResult<()> {
                diesel::insert_into(alert_outbox::table)
                    .values((
                        alert_outbox::account_id.eq(alert.account_id),
                        alert_outbox::recipient.eq(&alert.recipient.email),
                        alert_outbox::lang_code.eq(alert.recipient.lang_code.as_deref()),
                        alert_outbox::available.eq(alert.available.units()),
                        alert_outbox::threshold.eq(alert.threshold.units()),
                        alert_outbox::created_at.eq(alert.created_at.micros()),
                        alert_outbox::next_attempt_at.eq(alert.created_at.micros()),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn expired_open_holds(
                &mut self,
                account_id: AccountId,
                now: Timestamp,
            ) -> RepoResult<Vec<Hold>> {
                let rows = holds::table
                    .filter(holds::account_id.eq(account_id))
                    .filter(holds::status.eq(HoldStatus::Open.as_str()))
                    .filter(holds::expires_at.le(now.micros()))
                    .order((holds::expires_at, holds::id))
                    .select(HoldRow::as_select())
                    .load::<HoldRow>(self)?;
                Ok(convert(rows)?)
            }

            fn allocations_of(&mut self, hold_ids: &[HoldId]) -> RepoResult<Vec<Allocation>> {
                let rows = hold_allocations::table
                    .filter(hold_allocations::hold_id.eq_any(hold_ids))
                    .order((hold_allocations::hold_id, hold_allocations::lot_id))
                    .select(AllocationRow::as_select())
                    .load::<AllocationRow>(self)?;
                Ok(convert(rows)?)
            }

            fn insert_allocations(&mut self, allocations: &[Allocation]) -> RepoResult<()> {
                // One row at a time: batch inserts do not compile for SQLite in diesel.
                for a in allocations {
                    diesel::insert_into(hold_allocations::table)
                        .values(AllocationRow {
                            hold_id: a.hold_id,
                            lot_id: a.lot_id,
                            amount: a.amount.units(),
                        })
                        .execute(self)?;
                }
                Ok(())
            }

            fn delete_allocations(&mut self, hold_id: HoldId) -> RepoResult<()> {
                diesel::delete(
                    hold_allocations::table.filter(hold_allocations::hold_id.eq(hold_id)),
                )
                .execute(self)?;
                Ok(())
            }

            fn lots_to_settle(
                &mut self,
                account_id: AccountId,
                now: Timestamp,
                also: &[LotId],
            ) -> RepoResult<Vec<Lot>> {
                let rows = lots::table
                    .filter(lots::account_id.eq(account_id))
                    .filter(
                        lots::expires_at
                            .le(now.micros())
                            .and(lots::remaining.gt(0))
                            .or(lots::id.eq_any(also)),
                    )
                    .order(lots::id)
                    .select(LotRow::as_select())
                    .load::<LotRow>(self)?;
                Ok(convert(rows)?)
            }

            fn drawable_lots(
                &mut self,
                account_id: AccountId,
                now: Timestamp,
            ) -> RepoResult<Vec<Lot>> {
                let rows = lots::table
                    .filter(lots::account_id.eq(account_id))
                    .filter(lots::remaining.gt(0))
                    .filter(lots::expires_at.gt(now.micros()))
                    .order((lots::expires_at, lots::id))
                    .select(LotRow::as_select())
                    .load::<LotRow>(self)?;
                Ok(convert(rows)?)
            }

            fn lots_by_id(&mut self, ids: &[LotId]) -> RepoResult<Vec<Lot>> {
                let rows = lots::table
                    .filter(lots::id.eq_any(ids))
                    .order(lots::id)
                    .select(LotRow::as_select())
                    .load::<LotRow>(self)?;
                Ok(convert(rows)?)
            }

            fn set_lot_remaining(&mut self, lot_id: LotId, remaining: Credits) -> RepoResult<()> {
                diesel::update(lots::table.find(lot_id))
                    .set(lots::remaining.eq(remaining.units()))
                    .execute(self)?;
                Ok(())
            }

            fn insert_hold(&mut self, hold: NewHold<'_>) -> RepoResult<Hold> {
                Ok(diesel::insert_into(holds::table)
                    .values((
                        holds::account_id.eq(hold.account_id),
                        holds::token_hash.eq(hold.token_hash),
                        holds::amount.eq(hold.amount.units()),
                        holds::status.eq(HoldStatus::Open.as_str()),
                        holds::description.eq(hold.description),
                        holds::created_at.eq(hold.created_at.micros()),
                        holds::expires_at.eq(hold.expires_at.micros()),
                    ))
                    .returning(HoldRow::as_returning())
                    .get_result::<HoldRow>(self)?
                    .try_into()?)
            }

            fn find_hold(&mut self, token_hash: &str) -> RepoResult<Option<Hold>> {
                Ok(holds::table
                    .filter(holds::token_hash.eq(token_hash))
                    .select(HoldRow::as_select())
                    .first::<HoldRow>(self)
                    .optional()?
                    .map(Hold::try_from)
                    .transpose()?)
            }

            fn get_hold(&mut self, id: HoldId) -> RepoResult<Option<Hold>> {
                Ok(holds::table
                    .find(id)
                    .select(HoldRow::as_select())
                    .first::<HoldRow>(self)
                    .optional()?
                    .map(Hold::try_from)
                    .transpose()?)
            }

            fn close_hold(
                &mut self,
                id: HoldId,
                status: HoldStatus,
                captured: Option<Credits>,
                closed_at: Timestamp,
            ) -> RepoResult<()> {
                diesel::update(holds::table.find(id))
                    .set((
                        holds::status.eq(status.as_str()),
                        holds::captured.eq(captured.map(Credits::units)),
                        holds::closed_at.eq(closed_at.micros()),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn insert_journal(&mut self, e: &JournalEntry) -> RepoResult<()> {
                diesel::insert_into(journal::table)
                    .values((
                        journal::account_id.eq(e.account_id),
                        journal::seq.eq(e.seq),
                        journal::kind.eq(e.kind.as_str()),
                        journal::amount.eq(e.amount_units),
                        journal::balance_after.eq(e.balance_after.units()),
                        journal::hold_id.eq(e.hold_id),
                        journal::lot_id.eq(e.lot_id),
                        journal::description.eq(e.description.as_deref()),
                        journal::effective_at.eq(e.effective_at.micros()),
                        journal::recorded_at.eq(e.recorded_at.micros()),
                    ))
                    .execute(self)?;
                Ok(())
            }
        }

        impl LedgerRepo for $conn {
            fn insert_lot(&mut self, lot: NewLot<'_>) -> RepoResult<LotId> {
                Ok(diesel::insert_into(lots::table)
                    .values((
                        lots::account_id.eq(lot.account_id),
                        lots::amount.eq(lot.amount.units()),
                        lots::remaining.eq(lot.amount.units()),
                        lots::expires_at.eq(lot.expires_at.micros()),
                        lots::origin.eq(lot.origin.as_str()),
                        lots::reference.eq(lot.reference),
                        lots::created_at.eq(lot.created_at.micros()),
                    ))
                    .returning(lots::id)
                    .get_result(self)?)
            }

            fn journal_balance_at(
                &mut self,
                account_id: AccountId,
                at: Timestamp,
            ) -> RepoResult<Option<Credits>> {
                Ok(journal::table
                    .filter(journal::account_id.eq(account_id))
                    .filter(journal::effective_at.le(at.micros()))
                    .order(journal::seq.desc())
                    .select(journal::balance_after)
                    .first::<i64>(self)
                    .optional()?
                    .map(credits)
                    .transpose()?)
            }
        }
    };
}

impl_ledger_repo!(SqliteConnection);
impl_ledger_repo!(PgConnection);
