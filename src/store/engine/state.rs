//! What the engine keeps in memory of the accounts it has touched: enough to run a ledger
//! operation without reading the database. Every entry carries the account's
//! `lock_version` as read under the lock; a batch reloads any entry whose version moved
//! (another process, the sweeper or an admin write changed the account meanwhile).

use std::collections::{BTreeMap, HashMap};

use crate::ledger::{Account, AccountId, Allocation, Hold, HoldId, Lot, LotId};

/// One account as the database holds it: the row, its open holds with their allocations,
/// and every lot that can still matter (credits left, or allocated to an open hold).
#[derive(Clone, Debug)]
pub(crate) struct AccountState {
    pub account: Account,
    pub version: i64,
    pub lots: BTreeMap<LotId, Lot>,
    pub open_holds: BTreeMap<HoldId, Hold>,
    /// Allocations of open holds, by hold.
    pub allocations: BTreeMap<HoldId, Vec<Allocation>>,
    pub last_used: u64,
}

impl AccountState {
    /// Forgets lots that can no longer be drawn, settled or refilled: no credits left and
    /// no open hold drawing on them (a later hold cannot draw an empty lot).
    pub fn prune_lots(&mut self) {
        let allocations = &self.allocations;
        self.lots.retain(|id, lot| {
            !lot.remaining.is_zero()
                || allocations
                    .values()
                    .any(|list| list.iter().any(|a| a.lot_id == *id))
        });
    }
}

/// The accounts in memory, plus an index from open-hold token hash to its account.
pub(crate) struct Cache {
    accounts: HashMap<AccountId, AccountState>,
    tokens: HashMap<String, (AccountId, HoldId)>,
    tick: u64,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            accounts: HashMap::new(),
            tokens: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Starts a batch: entries touched from now on count as recently used.
    pub fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub fn version(&self, id: AccountId) -> Option<i64> {
        self.accounts.get(&id).map(|s| s.version)
    }

    pub fn get(&self, id: AccountId) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    pub fn get_mut(&mut self, id: AccountId) -> Option<&mut AccountState> {
        let tick = self.tick;
        let state = self.accounts.get_mut(&id)?;
        state.last_used = tick;
        Some(state)
    }

    /// The (account, hold) of an open hold known in memory.
    pub fn open_hold_by_token(&self, token_hash: &str) -> Option<(AccountId, HoldId)> {
        self.tokens.get(token_hash).copied()
    }

    pub fn index_token(&mut self, token_hash: &str, account_id: AccountId, hold_id: HoldId) {
        self.tokens
            .insert(token_hash.to_owned(), (account_id, hold_id));
    }

    pub fn unindex_token(&mut self, token_hash: &str) {
        self.tokens.remove(token_hash);
    }

    /// Puts a freshly loaded account in place of what was known of it.
    pub fn insert(&mut self, mut state: AccountState) {
        self.remove(state.account.id);
        state.last_used = self.tick;
        for hold in state.open_holds.values() {
            self.tokens
                .insert(hold.token_hash.clone(), (hold.account_id, hold.id));
        }
        self.accounts.insert(state.account.id, state);
    }

    pub fn remove(&mut self, id: AccountId) {
        if let Some(old) = self.accounts.remove(&id) {
            for hold in old.open_holds.values() {
                self.tokens.remove(&hold.token_hash);
            }
        }
    }

    /// Drops the least recently used accounts beyond the capacity (they are reloaded on
    /// their next operation).
    pub fn evict(&mut self) {
        if self.accounts.len() <= self.capacity {
            return;
        }
        let keep = self.capacity - self.capacity / 10;
        let mut by_age: Vec<(u64, AccountId)> = self
            .accounts
            .values()
            .map(|s| (s.last_used, s.account.id))
            .collect();
        by_age.sort_unstable();
        let excess = by_age.len().saturating_sub(keep);
        for (_, id) in by_age.into_iter().take(excess) {
            self.remove(id);
        }
    }
}
