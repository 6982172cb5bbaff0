//! What the ledger needs from storage, in two traits:
//!
//! - [`HoldRepo`]: what settlement, authorize, capture, cancel and the balance read need
//!   (one account's row, its open holds, the lots they draw on, appending to its journal).
//!   Implemented by the SQL store for each backend and by the ledger engine's in-memory
//!   overlay, which runs those operations in batches.
//! - [`LedgerRepo`]: the rest of the ledger, which only the SQL store implements: creating
//!   lots (grants) and reading past balances. An operation that needs these takes a
//!   `LedgerRepo`, so handing it the overlay does not compile.
//!
//! Every method runs inside the caller's transaction; write operations call
//! [`HoldRepo::lock_account`] first so that concurrent writers of one account queue.

use super::{
    Account, AccountId, Allocation, Credits, EntryKind, Hold, HoldId, HoldStatus, JournalEntry,
    Lot, LotId, Timestamp,
};

/// A hold about to be stored.
pub struct NewHold<'a> {
    pub account_id: AccountId,
    pub token_hash: &'a str,
    pub amount: Credits,
    pub description: Option<&'a str>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A lot about to be stored.
pub struct NewLot<'a> {
    pub account_id: AccountId,
    pub amount: Credits,
    pub expires_at: Timestamp,
    pub origin: EntryKind,
    pub reference: Option<&'a str>,
    pub created_at: Timestamp,
}

pub type RepoResult<T> = Result<T, super::error::StorageError>;

/// A low-credit alert for one recipient, queued in the transaction that crossed.
pub struct NewAlert<'a> {
    pub account_id: AccountId,
    pub recipient: &'a super::Recipient,
    pub available: Credits,
    pub threshold: Credits,
    pub created_at: Timestamp,
}

/// Storage for the operations that run in the ledger engine's batches (see the module
/// documentation); every operation of `ledger::ops` but [`super::ops::grant`] and
/// [`super::ops::balance_at`] needs only this.
pub trait HoldRepo {
    /// Locks the account row for the rest of the transaction and returns it.
    fn lock_account(&mut self, id: AccountId) -> RepoResult<Account>;
    fn get_account(&mut self, id: AccountId) -> RepoResult<Option<Account>>;
    /// Queues a low-credit alert (the alert worker sends it after commit).
    fn insert_alert(&mut self, alert: NewAlert<'_>) -> RepoResult<()>;
    /// Stores balance, reserved, last sequence number, update time and alert arming.
    fn save_account_totals(&mut self, account: &Account) -> RepoResult<()>;

    fn expired_open_holds(
        &mut self,
        account_id: AccountId,
        now: Timestamp,
    ) -> RepoResult<Vec<Hold>>;
    fn allocations_of(&mut self, hold_ids: &[HoldId]) -> RepoResult<Vec<Allocation>>;
    fn insert_allocations(&mut self, allocations: &[Allocation]) -> RepoResult<()>;
    fn delete_allocations(&mut self, hold_id: HoldId) -> RepoResult<()>;

    /// Expired lots with credits left, plus the lots listed in `also`.
    fn lots_to_settle(
        &mut self,
        account_id: AccountId,
        now: Timestamp,
        also: &[LotId],
    ) -> RepoResult<Vec<Lot>>;
    /// Unexpired lots with credits left, earliest expiry then oldest first.
    fn drawable_lots(&mut self, account_id: AccountId, now: Timestamp) -> RepoResult<Vec<Lot>>;
    fn lots_by_id(&mut self, ids: &[LotId]) -> RepoResult<Vec<Lot>>;
    fn set_lot_remaining(&mut self, lot_id: LotId, remaining: Credits) -> RepoResult<()>;

    fn insert_hold(&mut self, hold: NewHold<'_>) -> RepoResult<Hold>;
    fn find_hold(&mut self, token_hash: &str) -> RepoResult<Option<Hold>>;
    fn get_hold(&mut self, id: HoldId) -> RepoResult<Option<Hold>>;
    fn close_hold(
        &mut self,
        id: HoldId,
        status: HoldStatus,
        captured: Option<Credits>,
        closed_at: Timestamp,
    ) -> RepoResult<()>;

    fn insert_journal(&mut self, entry: &JournalEntry) -> RepoResult<()>;
}

/// The whole ledger's storage: [`HoldRepo`] plus what grants and history reads need,
/// which run in their own transactions on the database (never in an engine batch).
pub trait LedgerRepo: HoldRepo {
    fn insert_lot(&mut self, lot: NewLot<'_>) -> RepoResult<LotId>;
    /// `balance_after` of the newest entry in effect at `at`, if any.
    fn journal_balance_at(
        &mut self,
        account_id: AccountId,
        at: Timestamp,
    ) -> RepoResult<Option<Credits>>;
}
