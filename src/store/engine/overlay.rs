//! [`HoldRepo`] over the engine's memory: the ledger operations of `ledger::ops` that take
//! a `HoldRepo` run unchanged against it, reading what the cache holds and recording their
//! writes for one flush per batch. Each operation can be undone on its own, so a refused
//! operation leaves neither memory nor the batch's writes changed. Its queries answer as
//! the SQL ones do (same filters, same order); the overlay ≡ SQL test in `equivalence.rs`
//! holds the two equal.

use std::collections::{BTreeSet, HashMap};

use super::state::{AccountState, Cache};
use crate::ledger::StorageError;
use crate::ledger::repo::{HoldRepo, NewAlert, NewHold, RepoResult};
use crate::ledger::{
    Account, AccountId, Allocation, Credits, Hold, HoldId, HoldStatus, JournalEntry, Lot, LotId,
    Recipient, Timestamp,
};

/// A low-credit alert with its recipient owned, waiting for the flush.
#[derive(Clone, Debug)]
pub(crate) struct PendingAlert {
    pub account_id: AccountId,
    pub recipient: Recipient,
    pub available: Credits,
    pub threshold: Credits,
    pub created_at: Timestamp,
}

/// Everything a batch changed, in the order the database must see it.
#[derive(Default)]
pub(crate) struct WriteSet {
    pub new_holds: Vec<Hold>,
    pub new_allocations: Vec<Allocation>,
    /// Lots whose remaining credits moved: (account, lot); values are read at flush.
    pub lots: BTreeSet<(AccountId, LotId)>,
    /// Holds closed, in their final state.
    pub closed: Vec<Hold>,
    /// Holds whose allocations go.
    pub freed: Vec<HoldId>,
    pub journal: Vec<JournalEntry>,
    pub alerts: Vec<PendingAlert>,
    /// Accounts whose totals were saved.
    pub accounts: BTreeSet<AccountId>,
}

/// What one operation changed in memory, to put back if it fails.
enum Undo {
    Account(Account),
    Lot(LotId, Option<Lot>),
    OpenHold(HoldId, Option<Hold>),
    Allocations(HoldId, Option<Vec<Allocation>>),
    Closed(HoldId, Option<Hold>),
}

/// Lengths of the write-set's lists when an operation began.
#[derive(Clone, Copy, Default)]
struct Mark {
    new_holds: usize,
    new_allocations: usize,
    closed: usize,
    freed: usize,
    journal: usize,
    alerts: usize,
}

pub(crate) struct Overlay<'a, C> {
    conn: &'a mut C,
    cache: &'a mut Cache,
    writes: &'a mut WriteSet,
    /// Holds closed in this batch (not yet in the database), by id and by token.
    closed: HashMap<HoldId, Hold>,
    closed_tokens: HashMap<String, HoldId>,
    /// Ids for new holds, reserved from the database beforehand.
    hold_ids: &'a mut std::vec::IntoIter<HoldId>,
    /// The account the current operation locked: operations touch one account.
    current: Option<AccountId>,
    undo: Vec<Undo>,
    mark: Mark,
}

fn missing(what: &str) -> StorageError {
    StorageError::failed(format!("ledger engine: {what}"))
}

fn not_loaded(id: AccountId) -> StorageError {
    StorageError::NotFound(format!("account {id} is not loaded").into())
}

impl<'a, C: HoldRepo> Overlay<'a, C> {
    pub fn new(
        conn: &'a mut C,
        cache: &'a mut Cache,
        writes: &'a mut WriteSet,
        hold_ids: &'a mut std::vec::IntoIter<HoldId>,
    ) -> Self {
        Overlay {
            conn,
            cache,
            writes,
            closed: HashMap::new(),
            closed_tokens: HashMap::new(),
            hold_ids,
            current: None,
            undo: Vec::new(),
            mark: Mark::default(),
        }
    }

    /// Starts an operation.
    pub fn begin(&mut self) {
        self.current = None;
        self.undo.clear();
        let w = &self.writes;
        self.mark = Mark {
            new_holds: w.new_holds.len(),
            new_allocations: w.new_allocations.len(),
            closed: w.closed.len(),
            freed: w.freed.len(),
            journal: w.journal.len(),
            alerts: w.alerts.len(),
        };
    }

    /// Puts memory and the write-set back as they were when the operation began.
    pub fn rollback(&mut self) {
        let m = self.mark;
        let w = &mut self.writes;
        w.new_holds.truncate(m.new_holds);
        w.new_allocations.truncate(m.new_allocations);
        w.closed.truncate(m.closed);
        w.freed.truncate(m.freed);
        w.journal.truncate(m.journal);
        w.alerts.truncate(m.alerts);
        let Some(account_id) = self.current else {
            self.undo.clear();
            return;
        };
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Closed(id, previous) => {
                    if let Some(hold) = self.closed.remove(&id) {
                        self.closed_tokens.remove(&hold.token_hash);
                    }
                    if let Some(hold) = previous {
                        self.closed_tokens.insert(hold.token_hash.clone(), id);
                        self.closed.insert(id, hold);
                    }
                }
                Undo::OpenHold(id, previous) => {
                    let Some(state) = self.cache.get_mut(account_id) else {
                        continue;
                    };
                    let removed = state.open_holds.remove(&id);
                    let token = removed.map(|h| h.token_hash);
                    if let Some(hold) = previous {
                        let token_hash = hold.token_hash.clone();
                        state.open_holds.insert(id, hold);
                        self.cache.index_token(&token_hash, account_id, id);
                    } else if let Some(token) = token {
                        self.cache.unindex_token(&token);
                    }
                }
                undo => {
                    let Some(state) = self.cache.get_mut(account_id) else {
                        continue;
                    };
                    match undo {
                        Undo::Account(account) => state.account = account,
                        Undo::Lot(id, Some(lot)) => {
                            state.lots.insert(id, lot);
                        }
                        Undo::Lot(id, None) => {
                            state.lots.remove(&id);
                        }
                        Undo::Allocations(id, Some(list)) => {
                            state.allocations.insert(id, list);
                        }
                        Undo::Allocations(id, None) => {
                            state.allocations.remove(&id);
                        }
                        Undo::Closed(..) | Undo::OpenHold(..) => {}
                    }
                }
            }
        }
    }

    fn state(&mut self, account_id: AccountId) -> RepoResult<&mut AccountState> {
        if self.current.is_some_and(|c| c != account_id) {
            return Err(missing("an operation touched two accounts"));
        }
        self.current = Some(account_id);
        self.cache
            .get_mut(account_id)
            .ok_or_else(|| not_loaded(account_id))
    }

    fn current_state(&mut self) -> RepoResult<&mut AccountState> {
        let id = self.current.ok_or_else(|| missing("no account locked"))?;
        self.cache.get_mut(id).ok_or_else(|| not_loaded(id))
    }
}

/// Only [`HoldRepo`]: grants and history reads run outside the engine, in their own
/// transactions, so they cannot be handed the overlay.
impl<C: HoldRepo> HoldRepo for Overlay<'_, C> {
    fn lock_account(&mut self, id: AccountId) -> RepoResult<Account> {
        // The batch locked and validated every account it serves before any operation.
        Ok(self.state(id)?.account.clone())
    }

    fn get_account(&mut self, id: AccountId) -> RepoResult<Option<Account>> {
        match self.state(id) {
            Ok(state) => Ok(Some(state.account.clone())),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn insert_alert(&mut self, alert: NewAlert<'_>) -> RepoResult<()> {
        self.writes.alerts.push(PendingAlert {
            account_id: alert.account_id,
            recipient: alert.recipient.clone(),
            available: alert.available,
            threshold: alert.threshold,
            created_at: alert.created_at,
        });
        Ok(())
    }

    fn save_account_totals(&mut self, account: &Account) -> RepoResult<()> {
        let state = self.state(account.id)?;
        let previous = std::mem::replace(&mut state.account, account.clone());
        self.undo.push(Undo::Account(previous));
        self.writes.accounts.insert(account.id);
        Ok(())
    }

    fn expired_open_holds(
        &mut self,
        account_id: AccountId,
        now: Timestamp,
    ) -> RepoResult<Vec<Hold>> {
        let state = self.state(account_id)?;
        let mut holds: Vec<Hold> = state
            .open_holds
            .values()
            .filter(|h| h.expires_at <= now)
            .cloned()
            .collect();
        holds.sort_by_key(|h| (h.expires_at, h.id));
        Ok(holds)
    }

    fn allocations_of(&mut self, hold_ids: &[HoldId]) -> RepoResult<Vec<Allocation>> {
        let state = self.current_state()?;
        let mut list: Vec<Allocation> = hold_ids
            .iter()
            .filter_map(|id| state.allocations.get(id))
            .flatten()
            .cloned()
            .collect();
        list.sort_by_key(|a| (a.hold_id, a.lot_id));
        Ok(list)
    }

    fn insert_allocations(&mut self, allocations: &[Allocation]) -> RepoResult<()> {
        for a in allocations {
            let state = self.current_state()?;
            let previous = state.allocations.get(&a.hold_id).cloned();
            state
                .allocations
                .entry(a.hold_id)
                .or_default()
                .push(a.clone());
            self.undo.push(Undo::Allocations(a.hold_id, previous));
            self.writes.new_allocations.push(a.clone());
        }
        Ok(())
    }

    fn delete_allocations(&mut self, hold_id: HoldId) -> RepoResult<()> {
        let state = self.current_state()?;
        let previous = state.allocations.remove(&hold_id);
        self.undo.push(Undo::Allocations(hold_id, previous));
        self.writes.freed.push(hold_id);
        Ok(())
    }

    fn lots_to_settle(
        &mut self,
        account_id: AccountId,
        now: Timestamp,
        also: &[LotId],
    ) -> RepoResult<Vec<Lot>> {
        let state = self.state(account_id)?;
        // BTreeMap order is id order, as the SQL version sorts.
        Ok(state
            .lots
            .values()
            .filter(|l| (l.expires_at <= now && !l.remaining.is_zero()) || also.contains(&l.id))
            .cloned()
            .collect())
    }

    fn drawable_lots(&mut self, account_id: AccountId, now: Timestamp) -> RepoResult<Vec<Lot>> {
        let state = self.state(account_id)?;
        let mut lots: Vec<Lot> = state
            .lots
            .values()
            .filter(|l| !l.remaining.is_zero() && l.expires_at > now)
            .cloned()
            .collect();
        lots.sort_by_key(|l| (l.expires_at, l.id));
        Ok(lots)
    }

    fn lots_by_id(&mut self, ids: &[LotId]) -> RepoResult<Vec<Lot>> {
        let state = self.current_state()?;
        let mut lots = Vec::with_capacity(ids.len());
        for id in ids {
            // Lots allocated to open holds are always in memory (see AccountState).
            let lot = state
                .lots
                .get(id)
                .ok_or_else(|| missing(&format!("lot {id} not in memory")))?;
            lots.push(lot.clone());
        }
        lots.sort_by_key(|l| l.id);
        lots.dedup_by_key(|l| l.id);
        Ok(lots)
    }

    fn set_lot_remaining(&mut self, lot_id: LotId, remaining: Credits) -> RepoResult<()> {
        let state = self.current_state()?;
        let account_id = state.account.id;
        let lot = state
            .lots
            .get_mut(&lot_id)
            .ok_or_else(|| missing(&format!("lot {lot_id} not in memory")))?;
        let previous = lot.clone();
        lot.remaining = remaining;
        self.undo.push(Undo::Lot(lot_id, Some(previous)));
        self.writes.lots.insert((account_id, lot_id));
        Ok(())
    }

    fn insert_hold(&mut self, new: NewHold<'_>) -> RepoResult<Hold> {
        let id = self
            .hold_ids
            .next()
            .ok_or_else(|| missing("no hold id reserved"))?;
        let hold = Hold {
            id,
            account_id: new.account_id,
            token_hash: new.token_hash.to_owned(),
            amount: new.amount,
            status: HoldStatus::Open,
            captured: None,
            description: new.description.map(str::to_owned),
            created_at: new.created_at,
            expires_at: new.expires_at,
            closed_at: None,
        };
        let state = self.state(new.account_id)?;
        let previous = state.open_holds.insert(id, hold.clone());
        self.undo.push(Undo::OpenHold(id, previous));
        self.cache
            .index_token(&hold.token_hash, hold.account_id, id);
        self.writes.new_holds.push(hold.clone());
        Ok(hold)
    }

    fn find_hold(&mut self, token_hash: &str) -> RepoResult<Option<Hold>> {
        if let Some((account_id, hold_id)) = self.cache.open_hold_by_token(token_hash)
            && let Some(hold) = self
                .cache
                .get(account_id)
                .and_then(|s| s.open_holds.get(&hold_id))
        {
            return Ok(Some(hold.clone()));
        }
        if let Some(hold) = self
            .closed_tokens
            .get(token_hash)
            .and_then(|id| self.closed.get(id))
        {
            return Ok(Some(hold.clone()));
        }
        // Closed before this batch: the database has its final state.
        self.conn.find_hold(token_hash)
    }

    fn get_hold(&mut self, id: HoldId) -> RepoResult<Option<Hold>> {
        if let Some(hold) = self.closed.get(&id) {
            return Ok(Some(hold.clone()));
        }
        if let Some(account_id) = self.current
            && let Some(hold) = self
                .cache
                .get(account_id)
                .and_then(|s| s.open_holds.get(&id))
        {
            return Ok(Some(hold.clone()));
        }
        self.conn.get_hold(id)
    }

    fn close_hold(
        &mut self,
        id: HoldId,
        status: HoldStatus,
        captured: Option<Credits>,
        closed_at: Timestamp,
    ) -> RepoResult<()> {
        let state = self.current_state()?;
        let open = state
            .open_holds
            .remove(&id)
            .ok_or_else(|| missing(&format!("hold {id} is not open")))?;
        self.undo.push(Undo::OpenHold(id, Some(open.clone())));
        self.cache.unindex_token(&open.token_hash);
        let closed = Hold {
            status,
            captured,
            closed_at: Some(closed_at),
            ..open
        };
        self.closed_tokens.insert(closed.token_hash.clone(), id);
        let previous = self.closed.insert(id, closed.clone());
        self.undo.push(Undo::Closed(id, previous));
        self.writes.closed.push(closed);
        Ok(())
    }

    fn insert_journal(&mut self, entry: &JournalEntry) -> RepoResult<()> {
        self.writes.journal.push(entry.clone());
        Ok(())
    }
}
