//! Short-lived memory of what every provider call looks up first: the service behind a
//! key, the account behind a token, whether a database may use a service. Each entry
//! lives `database.lookup_cache_ms`; writes made through this process clear what they
//! change at once, so only another process's change can take that long to be seen.
//! Balances never come from here: the ledger engine checks its accounts on every batch.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ledger::{Account, AccountId, Service, ServiceId};

/// Bounds memory whatever the callers send: past this, a map starts again empty.
const MAX_ENTRIES: usize = 50_000;

struct Timed<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Timed<K, V> {
    fn new() -> Self {
        Timed {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // Entries are plain values: a panic elsewhere cannot leave one half-written.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.map();
        let (value, at) = map.get(key)?;
        (at.elapsed() < ttl).then(|| value.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut map = self.map();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    fn remove(&self, key: &K) {
        self.map().remove(key);
    }

    fn clear(&self) {
        self.map().clear();
    }
}

pub(crate) struct Lookups {
    ttl: Duration,
    /// By key hash; unknown keys are not remembered.
    services: Timed<String, Service>,
    /// By (service, token storage hash).
    accounts: Timed<(ServiceId, String), Account>,
    /// By (service, database uuid).
    allowed: Timed<(ServiceId, String), bool>,
    /// Trials already given, by (service, database uuid): a claim is never undone, so
    /// this needs no expiry.
    trials: Mutex<std::collections::HashSet<(ServiceId, String)>>,
    /// Accounts that can never receive a trial again (they had theirs, or their database
    /// did): also permanent.
    trial_accounts: Mutex<std::collections::HashSet<AccountId>>,
}

impl Lookups {
    pub fn new(ttl: Duration) -> Lookups {
        Lookups {
            ttl,
            services: Timed::new(),
            accounts: Timed::new(),
            allowed: Timed::new(),
            trials: Mutex::new(std::collections::HashSet::new()),
            trial_accounts: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn trial_account_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<AccountId>> {
        self.trial_accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn trial_settled_for(&self, account_id: AccountId) -> bool {
        self.trial_account_set().contains(&account_id)
    }

    pub fn keep_trial_settled_for(&self, account_id: AccountId) {
        let mut set = self.trial_account_set();
        if set.len() >= MAX_ENTRIES {
            set.clear();
        }
        set.insert(account_id);
    }

    fn trial_set(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(ServiceId, String)>> {
        self.trials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn trial_claimed(&self, service_id: ServiceId, dbuuid: &str) -> bool {
        self.trial_set().contains(&(service_id, dbuuid.to_owned()))
    }

    pub fn keep_trial_claimed(&self, service_id: ServiceId, dbuuid: &str) {
        let mut set = self.trial_set();
        if set.len() >= MAX_ENTRIES {
            set.clear();
        }
        set.insert((service_id, dbuuid.to_owned()));
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn service(&self, key_hash: &str) -> Option<Service> {
        self.services.get(key_hash, self.ttl)
    }

    pub fn keep_service(&self, key_hash: &str, service: &Service) {
        if self.enabled() {
            self.services.put(key_hash.to_owned(), service.clone());
        }
    }

    pub fn account(&self, service_id: ServiceId, token_hash: &str) -> Option<Account> {
        self.accounts
            .get(&(service_id, token_hash.to_owned()), self.ttl)
    }

    pub fn keep_account(&self, account: &Account) {
        if self.enabled() {
            self.accounts.put(
                (account.service_id, account.token_hash.clone()),
                account.clone(),
            );
        }
    }

    pub fn forget_account(&self, service_id: ServiceId, token_hash: &str) {
        self.accounts.remove(&(service_id, token_hash.to_owned()));
    }

    pub fn allowed(&self, service_id: ServiceId, dbuuid: &str) -> Option<bool> {
        self.allowed.get(&(service_id, dbuuid.to_owned()), self.ttl)
    }

    pub fn keep_allowed(&self, service_id: ServiceId, dbuuid: &str, allowed: bool) {
        if self.enabled() {
            self.allowed.put((service_id, dbuuid.to_owned()), allowed);
        }
    }

    /// A service's key, settings or databases changed.
    pub fn services_changed(&self) {
        self.services.clear();
        self.allowed.clear();
    }
}
