//! Ledger operations. Each runs inside one database transaction and touches one account:
//! lock it, settle what time did to it, apply the operation, save its totals.

use super::repo::{HoldRepo, LedgerRepo, NewAlert, NewHold, NewLot};
use super::settle::{Movement, SettleInput, Settlement, settle};
use super::{
    Account, AccountId, Allocation, Balance, Credits, EntryKind, Hold, HoldId, HoldStatus,
    JournalEntry, LedgerError, Lot, LotId, ServiceId, StorageError, Timestamp,
};

/// Result of crediting an account.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GrantOutcome {
    pub account_id: AccountId,
    pub lot_id: LotId,
    pub seq: i64,
    pub balance: Balance,
}

/// Result of a capture or a cancel; `replayed` is true when the hold was already in the
/// requested final state (an idempotent retry).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CloseOutcome {
    pub hold: Hold,
    pub replayed: bool,
    pub balance: Balance,
}

/// A locked account with its operation time (never earlier than its last change, so
/// journal times follow journal order even if the wall clock steps back).
struct Locked {
    account: Account,
    now: Timestamp,
    /// Available credits when the lock was taken, before settlement: a fall below the
    /// alert threshold is judged from here.
    available_before: Credits,
    /// A top-up may re-arm the alert.
    topped_up: bool,
}

impl Locked {
    fn available(&self) -> Credits {
        self.account.balance.saturating_sub(self.account.reserved)
    }

    /// Appends a journal entry and moves the running balance with it.
    fn append<R: HoldRepo>(
        &mut self,
        repo: &mut R,
        m: Movement,
        description: Option<&str>,
    ) -> Result<i64, LedgerError> {
        let after = self
            .account
            .balance
            .units()
            .checked_add(m.amount_units)
            .ok_or(LedgerError::InvalidAmount(super::CreditsError::Overflow))?;
        let balance_after = Credits::from_units(after)?;
        let seq = self.account.last_seq + 1;
        repo.insert_journal(&JournalEntry {
            account_id: self.account.id,
            seq,
            kind: m.kind,
            amount_units: m.amount_units,
            balance_after,
            hold_id: m.hold_id,
            lot_id: m.lot_id,
            description: description.map(str::to_owned),
            effective_at: m.effective_at,
            recorded_at: self.now,
        })?;
        self.account.balance = balance_after;
        self.account.last_seq = seq;
        Ok(seq)
    }

    /// Returns credits from a closing hold to their lot, or expires them at once when the
    /// lot has expired meanwhile.
    fn release<R: HoldRepo>(
        &mut self,
        repo: &mut R,
        lot: &Lot,
        amount: Credits,
        hold_id: HoldId,
    ) -> Result<(), LedgerError> {
        if amount.is_zero() {
            return Ok(());
        }
        if lot.expires_at <= self.now {
            let m = Movement {
                kind: EntryKind::Expiry,
                amount_units: -amount.units(),
                lot_id: Some(lot.id),
                hold_id: Some(hold_id),
                effective_at: self.now,
            };
            self.append(repo, m, None)?;
        } else {
            repo.set_lot_remaining(lot.id, lot.remaining.checked_add(amount)?)?;
        }
        Ok(())
    }

    /// Reserves `r.amount` in a new hold until `expires_at`, drawn from the lots; the
    /// caller checked that the credits are available.
    fn reserve<R: HoldRepo>(
        &mut self,
        repo: &mut R,
        r: &HoldRequest<'_>,
        expires_at: Timestamp,
    ) -> Result<Hold, LedgerError> {
        let hold = repo.insert_hold(NewHold {
            account_id: self.account.id,
            token_hash: r.token_hash,
            amount: r.amount,
            description: r.description,
            created_at: self.now,
            expires_at,
        })?;
        let allocations: Vec<Allocation> = self
            .draw(repo, r.amount)?
            .into_iter()
            .map(|(lot_id, amount)| Allocation {
                hold_id: hold.id,
                lot_id,
                amount,
            })
            .collect();
        repo.insert_allocations(&allocations)?;
        self.account.reserved = self.account.reserved.checked_add(r.amount)?;
        Ok(hold)
    }

    /// Takes `amount` from unexpired lots, earliest expiry then oldest first.
    fn draw<R: HoldRepo>(
        &mut self,
        repo: &mut R,
        amount: Credits,
    ) -> Result<Vec<(LotId, Credits)>, LedgerError> {
        let mut missing = amount;
        let mut taken = Vec::new();
        if missing.is_zero() {
            return Ok(taken);
        }
        for lot in repo.drawable_lots(self.account.id, self.now)? {
            let take = lot.remaining.min(missing);
            repo.set_lot_remaining(lot.id, lot.remaining.checked_sub(take)?)?;
            taken.push((lot.id, take));
            missing = missing.checked_sub(take)?;
            if missing.is_zero() {
                return Ok(taken);
            }
        }
        // The lots hold exactly the available credits; reaching this is a broken store.
        Err(StorageError::failed(format!(
            "account {}: lots short of available credits by {missing}",
            self.account.id
        ))
        .into())
    }

    /// Edge-triggered low-credit alert: one per fall from at-or-over the threshold to
    /// under it while armed; a top-up that lifts the account back over re-arms it, also
    /// while alerts are off (threshold 0 or "warn me" unset), so turning them back on
    /// later finds the alert armed.
    fn watch_threshold<R: HoldRepo>(&mut self, repo: &mut R) -> Result<(), LedgerError> {
        let settings = &self.account.alerts;
        let threshold = settings.threshold;
        let after = self.available();
        if self.topped_up && after >= threshold {
            self.account.alert_armed = true;
            return Ok(());
        }
        if threshold.is_zero() || !settings.warn_me {
            return Ok(());
        }
        if self.account.alert_armed && self.available_before >= threshold && after < threshold {
            for recipient in &settings.recipients {
                repo.insert_alert(NewAlert {
                    account_id: self.account.id,
                    recipient,
                    available: after,
                    threshold,
                    created_at: self.now,
                })?;
            }
            self.account.alert_armed = false;
        }
        Ok(())
    }

    fn save<R: HoldRepo>(mut self, repo: &mut R) -> Result<Account, LedgerError> {
        self.watch_threshold(repo)?;
        self.account.updated_at = self.now;
        repo.save_account_totals(&self.account)?;
        Ok(self.account)
    }
}

fn figures(account: &Account) -> Balance {
    Balance {
        balance: account.balance,
        reserved: account.reserved,
        available: account.balance.saturating_sub(account.reserved),
    }
}

/// Loads what settlement needs for `account` at `now`.
fn settle_input<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    now: Timestamp,
) -> Result<SettleInput, LedgerError> {
    let expired_holds = repo.expired_open_holds(account_id, now)?;
    let hold_ids: Vec<HoldId> = expired_holds.iter().map(|h| h.id).collect();
    let allocations = if hold_ids.is_empty() {
        Vec::new()
    } else {
        repo.allocations_of(&hold_ids)?
    };
    let mut lot_ids: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
    lot_ids.sort_unstable();
    lot_ids.dedup();
    let lots = repo.lots_to_settle(account_id, now, &lot_ids)?;
    Ok(SettleInput {
        expired_holds,
        allocations,
        lots,
    })
}

fn lock<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    now: Timestamp,
) -> Result<Locked, LedgerError> {
    let account = repo
        .lock_account(account_id)
        .map_err(LedgerError::unknown_if_missing)?;
    let now = now.max(account.updated_at);
    let available_before = account.balance.saturating_sub(account.reserved);
    let mut locked = Locked {
        account,
        now,
        available_before,
        topped_up: false,
    };
    let settlement = settle(settle_input(repo, account_id, now)?, now)?;
    persist_settlement(repo, &mut locked, settlement)?;
    Ok(locked)
}

fn persist_settlement<R: HoldRepo>(
    repo: &mut R,
    locked: &mut Locked,
    s: Settlement,
) -> Result<(), LedgerError> {
    if s.is_empty() {
        return Ok(());
    }
    for (hold_id, at) in &s.expired_holds {
        repo.close_hold(*hold_id, HoldStatus::Expired, None, *at)?;
        repo.delete_allocations(*hold_id)?;
    }
    for (lot_id, remaining) in &s.lot_remaining {
        repo.set_lot_remaining(*lot_id, *remaining)?;
    }
    for m in s.movements {
        locked.append(repo, m, None)?;
    }
    locked.account.reserved = locked.account.reserved.checked_sub(s.released_credits)?;
    Ok(())
}

/// Closes what expired on the account up to `now` (the sweeper's job).
pub fn settle_account<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    now: Timestamp,
) -> Result<Balance, LedgerError> {
    let locked = lock(repo, account_id, now)?;
    let account = locked.save(repo)?;
    Ok(figures(&account))
}

/// Credits to add to an account as a new lot.
#[derive(Clone, Debug)]
pub struct Grant<'a> {
    pub account_id: AccountId,
    pub amount: Credits,
    /// [`super::time::NEVER`] for credits that do not expire.
    pub expires_at: Timestamp,
    /// `Grant`, `Topup` or `Trial`.
    pub origin: EntryKind,
    /// An external reference kept on the lot (an order, a payment).
    pub reference: Option<&'a str>,
    pub description: Option<&'a str>,
}

/// Adds credits to an account as a new lot.
pub fn grant<R: LedgerRepo>(
    repo: &mut R,
    g: &Grant<'_>,
    now: Timestamp,
) -> Result<GrantOutcome, LedgerError> {
    let Grant {
        account_id,
        amount,
        expires_at,
        origin,
        reference,
        description,
    } = *g;
    if amount.is_zero() {
        return Err(LedgerError::Invalid(
            "a grant must be more than 0 credits".into(),
        ));
    }
    if !matches!(
        origin,
        EntryKind::Grant | EntryKind::Topup | EntryKind::Trial
    ) {
        return Err(LedgerError::Invalid(format!(
            "{origin} does not add credits"
        )));
    }
    let mut locked = lock(repo, account_id, now)?;
    if expires_at <= locked.now {
        return Err(LedgerError::InvalidExpiry(format!(
            "{expires_at} is not in the future"
        )));
    }
    let lot_id = repo.insert_lot(NewLot {
        account_id,
        amount,
        expires_at,
        origin,
        reference,
        created_at: locked.now,
    })?;
    let m = Movement {
        kind: origin,
        amount_units: amount.units(),
        lot_id: Some(lot_id),
        hold_id: None,
        effective_at: locked.now,
    };
    let seq = locked.append(repo, m, description)?;
    locked.topped_up = true;
    let account = locked.save(repo)?;
    Ok(GrantOutcome {
        account_id,
        lot_id,
        seq,
        balance: figures(&account),
    })
}

/// Locks an account that is to take holds until `expires_at`: refused when it is
/// disabled or the holds would expire at once.
fn lock_to_hold<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<Locked, LedgerError> {
    let locked = lock(repo, account_id, now)?;
    if locked.account.disabled {
        return Err(LedgerError::Disabled);
    }
    if expires_at <= locked.now {
        return Err(LedgerError::InvalidExpiry(
            "the hold would expire at once".into(),
        ));
    }
    Ok(locked)
}

/// When a hold asked for `ttl_hours` expires: at least an hour, at most
/// `max_ttl_hours` (`ledger.max_hold_ttl_hours`), from `now`.
pub fn hold_expiry(
    now: Timestamp,
    ttl_hours: i64,
    max_ttl_hours: i64,
) -> Result<Timestamp, LedgerError> {
    if ttl_hours < 1 {
        return Err(LedgerError::InvalidExpiry(format!(
            "ttl must be at least 1 hour, not {ttl_hours}"
        )));
    }
    Ok(now.plus_hours(ttl_hours.min(max_ttl_hours)))
}

/// Reserves `amount` for a provider until `expires_at`.
pub fn authorize<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    amount: Credits,
    expires_at: Timestamp,
    token_hash: &str,
    description: Option<&str>,
    now: Timestamp,
) -> Result<(Hold, Balance), LedgerError> {
    let mut locked = lock_to_hold(repo, account_id, expires_at, now)?;
    let available = locked.available();
    if amount > available {
        return Err(LedgerError::InsufficientCredit {
            needed: amount,
            available,
        });
    }
    let hold = locked.reserve(
        repo,
        &HoldRequest {
            amount,
            token_hash,
            description,
        },
        expires_at,
    )?;
    let account = locked.save(repo)?;
    Ok((hold, figures(&account)))
}

/// One hold of a batch (see [`authorize_each`]).
#[derive(Clone, Debug)]
pub struct HoldRequest<'a> {
    pub amount: Credits,
    pub token_hash: &'a str,
    pub description: Option<&'a str>,
}

/// Reserves each request's amount, in order, as far as the available credits go, under
/// one lock and one settlement of the account (a batch of SMS costs one account write,
/// not one per message). A request the account cannot cover any more is answered `None`
/// and the next ones are still tried: a cheaper one may fit.
pub fn authorize_each<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    requests: &[HoldRequest<'_>],
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<Vec<Option<Hold>>, LedgerError> {
    let mut locked = lock_to_hold(repo, account_id, expires_at, now)?;
    let mut holds = Vec::with_capacity(requests.len());
    for r in requests {
        if r.amount.is_zero() || r.amount > locked.available() {
            holds.push(None);
            continue;
        }
        let hold = locked.reserve(repo, r, expires_at)?;
        holds.push(Some(hold));
    }
    locked.save(repo)?;
    Ok(holds)
}

/// Finds an open-or-closed hold and locks its account; checks the service when given.
fn lock_hold<R: HoldRepo>(
    repo: &mut R,
    token_hash: &str,
    service_id: Option<ServiceId>,
    now: Timestamp,
) -> Result<(Locked, Hold), LedgerError> {
    let found = repo
        .find_hold(token_hash)?
        .ok_or(LedgerError::UnknownHold)?;
    let locked = lock(repo, found.account_id, now)?;
    if service_id.is_some_and(|s| s != locked.account.service_id) {
        return Err(LedgerError::WrongService);
    }
    // Re-read under the lock: a concurrent capture, cancel or the settlement above may
    // have closed it.
    let hold = repo.get_hold(found.id)?.ok_or(LedgerError::UnknownHold)?;
    Ok((locked, hold))
}

/// Consumes `amount` of a hold (all of it when `None`): less releases the rest, more
/// draws the difference from the available credits. Capturing a captured hold with the
/// same amount is a no-op.
pub fn capture<R: HoldRepo>(
    repo: &mut R,
    token_hash: &str,
    amount: Option<Credits>,
    service_id: Option<ServiceId>,
    now: Timestamp,
) -> Result<CloseOutcome, LedgerError> {
    let (mut locked, hold) = lock_hold(repo, token_hash, service_id, now)?;
    let replay = match amount {
        Some(amount) => hold.captured == Some(amount),
        None => hold.captured.is_some(),
    };
    let amount = amount.unwrap_or(hold.amount);
    match hold.status {
        HoldStatus::Open => {}
        HoldStatus::Captured if replay => {
            // The transaction commits: save the totals the settlement in `lock` moved,
            // or the journal and the account's running totals part ways.
            let account = locked.save(repo)?;
            return Ok(CloseOutcome {
                hold,
                replayed: true,
                balance: figures(&account),
            });
        }
        HoldStatus::Expired => return Err(LedgerError::HoldExpired),
        status => return Err(LedgerError::HoldClosed { status }),
    }

    let allocations = repo.allocations_of(&[hold.id])?;
    let lot_ids: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
    let mut lots = repo.lots_by_id(&lot_ids)?;
    // Consume what expires first, so the credits handed back last longest.
    lots.sort_by_key(|l| (l.expires_at, l.id));

    if amount > hold.amount {
        let extra = amount.checked_sub(hold.amount)?;
        let available = locked.available();
        if extra > available {
            return Err(LedgerError::InsufficientCredit {
                needed: extra,
                available,
            });
        }
        locked.draw(repo, extra)?;
    }

    let now = locked.now;
    let m = Movement {
        kind: EntryKind::Capture,
        amount_units: -amount.units(),
        lot_id: None,
        hold_id: Some(hold.id),
        effective_at: now,
    };
    locked.append(repo, m, hold.description.as_deref())?;
    let mut to_consume = amount.min(hold.amount);
    for lot in &lots {
        let held = allocations
            .iter()
            .filter(|a| a.lot_id == lot.id)
            .try_fold(Credits::ZERO, |sum, a| sum.checked_add(a.amount))?;
        let consumed = held.min(to_consume);
        to_consume = to_consume.checked_sub(consumed)?;
        locked.release(repo, lot, held.checked_sub(consumed)?, hold.id)?;
    }
    close(repo, locked, &hold, HoldStatus::Captured, Some(amount))
}

/// Closes an open hold whose credits were consumed or given back, and saves the account.
fn close<R: HoldRepo>(
    repo: &mut R,
    mut locked: Locked,
    hold: &Hold,
    status: HoldStatus,
    captured: Option<Credits>,
) -> Result<CloseOutcome, LedgerError> {
    repo.delete_allocations(hold.id)?;
    repo.close_hold(hold.id, status, captured, locked.now)?;
    locked.account.reserved = locked.account.reserved.checked_sub(hold.amount)?;
    let hold = repo.get_hold(hold.id)?.ok_or(LedgerError::UnknownHold)?;
    let account = locked.save(repo)?;
    Ok(CloseOutcome {
        hold,
        replayed: false,
        balance: figures(&account),
    })
}

/// Releases a hold. Cancelling a cancelled or expired hold is a no-op (nothing was
/// charged either way); cancelling a captured one is refused.
pub fn cancel<R: HoldRepo>(
    repo: &mut R,
    token_hash: &str,
    service_id: Option<ServiceId>,
    now: Timestamp,
) -> Result<CloseOutcome, LedgerError> {
    let (mut locked, hold) = lock_hold(repo, token_hash, service_id, now)?;
    match hold.status {
        HoldStatus::Open => {}
        HoldStatus::Cancelled | HoldStatus::Expired => {
            // Settlement may just have expired it: keep that on record.
            let account = locked.save(repo)?;
            return Ok(CloseOutcome {
                hold,
                replayed: true,
                balance: figures(&account),
            });
        }
        status => return Err(LedgerError::HoldClosed { status }),
    }
    let allocations = repo.allocations_of(&[hold.id])?;
    let lot_ids: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
    let lots = repo.lots_by_id(&lot_ids)?;
    // One allocation per (hold, lot): each lot is refilled once.
    for a in &allocations {
        let lot = lots
            .iter()
            .find(|l| l.id == a.lot_id)
            .ok_or_else(|| StorageError::failed(format!("lot {} missing", a.lot_id)))?;
        locked.release(repo, lot, a.amount, hold.id)?;
    }
    close(repo, locked, &hold, HoldStatus::Cancelled, None)
}

/// Balance figures at `now`, counting what has expired even if not yet settled.
/// Read-only: takes no lock and writes nothing.
pub fn balance<R: HoldRepo>(
    repo: &mut R,
    account_id: AccountId,
    now: Timestamp,
) -> Result<Balance, LedgerError> {
    let account = repo
        .get_account(account_id)?
        .ok_or(LedgerError::UnknownAccount)?;
    let s = settle(settle_input(repo, account_id, now)?, now)?;
    let balance = account.balance.checked_sub(s.expired_credits)?;
    let reserved = account.reserved.checked_sub(s.released_credits)?;
    Ok(Balance {
        balance,
        reserved,
        available: balance.saturating_sub(reserved),
    })
}

/// The balance as it stood at `at` (journal up to then, plus expiries not yet written).
pub fn balance_at<R: LedgerRepo>(
    repo: &mut R,
    account_id: AccountId,
    at: Timestamp,
) -> Result<Credits, LedgerError> {
    repo.get_account(account_id)?
        .ok_or(LedgerError::UnknownAccount)?;
    let journal = repo.journal_balance_at(account_id, at)?.unwrap_or_default();
    // Expiries due by `at` but not yet written all come after the newest entry, since
    // every write settles first; the same settlement replayed at `at` finds them.
    let pending = settle(settle_input(repo, account_id, at)?, at)?;
    Ok(journal.checked_sub(pending.expired_credits)?)
}
