//! Settlement: what time alone does to an account (holds and lots expiring).
//!
//! Pure: the write path persists the result inside its transaction, the read path only
//! reports it, so a hold past its expiry stops counting as reserved at once even before
//! the sweeper closes it.

use std::collections::HashMap;

use super::{
    Allocation, Credits, EntryKind, Hold, HoldId, LedgerError, Lot, LotId, StorageError, Timestamp,
};

/// What settlement needs to know about an account.
#[derive(Debug, Default)]
pub struct SettleInput {
    /// Open holds whose expiry is at or before `now`.
    pub expired_holds: Vec<Hold>,
    /// The allocations of those holds.
    pub allocations: Vec<Allocation>,
    /// Expired lots with credits left, and every lot those allocations came from.
    pub lots: Vec<Lot>,
}

/// A balance movement produced by settlement (always an expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: EntryKind,
    /// Signed units.
    pub amount_units: i64,
    pub lot_id: Option<LotId>,
    pub hold_id: Option<HoldId>,
    pub effective_at: Timestamp,
}

/// The changes settlement makes, in the order they happened.
#[derive(Debug, Default)]
pub struct Settlement {
    pub expired_holds: Vec<(HoldId, Timestamp)>,
    pub lot_remaining: Vec<(LotId, Credits)>,
    pub movements: Vec<Movement>,
    /// Total leaving the balance.
    pub expired_credits: Credits,
    /// Total no longer reserved.
    pub released_credits: Credits,
}

impl Settlement {
    pub fn is_empty(&self) -> bool {
        self.expired_holds.is_empty() && self.lot_remaining.is_empty()
    }
}

/// Plays hold and lot expiries up to `now` in time order (a hold released at the same
/// instant its lot expires goes back to the lot, which then expires whole).
pub fn settle(input: SettleInput, now: Timestamp) -> Result<Settlement, LedgerError> {
    let mut lots: HashMap<LotId, Lot> = input.lots.into_iter().map(|l| (l.id, l)).collect();
    let mut allocations: HashMap<HoldId, Vec<Allocation>> = HashMap::new();
    for a in input.allocations {
        allocations.entry(a.hold_id).or_default().push(a);
    }

    enum Event {
        Hold(Hold),
        Lot(LotId),
    }
    /// At one instant, holds are released before lots expire (variant order), each kind
    /// in id order.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Order {
        Hold(HoldId),
        Lot(LotId),
    }
    let mut events: Vec<(Timestamp, Order, Event)> = Vec::new();
    for h in input.expired_holds {
        if h.expires_at <= now {
            events.push((h.expires_at, Order::Hold(h.id), Event::Hold(h)));
        }
    }
    for l in lots.values() {
        if l.expires_at <= now {
            events.push((l.expires_at, Order::Lot(l.id), Event::Lot(l.id)));
        }
    }
    events.sort_by_key(|(t, order, _)| (*t, *order));

    let mut out = Settlement::default();
    let mut touched: Vec<LotId> = Vec::new();
    for (at, _, event) in events {
        match event {
            Event::Hold(hold) => {
                for a in allocations.remove(&hold.id).unwrap_or_default() {
                    let lot = lots
                        .get_mut(&a.lot_id)
                        .ok_or_else(|| StorageError::failed(format!("lot {} missing", a.lot_id)))?;
                    if lot.expires_at < at {
                        out.movements
                            .push(expiry(a.amount, lot.id, Some(hold.id), at));
                        out.expired_credits = out.expired_credits.checked_add(a.amount)?;
                    } else {
                        lot.remaining = lot.remaining.checked_add(a.amount)?;
                        touched.push(lot.id);
                    }
                }
                out.released_credits = out.released_credits.checked_add(hold.amount)?;
                out.expired_holds.push((hold.id, at));
            }
            Event::Lot(id) => {
                if let Some(lot) = lots.get_mut(&id).filter(|l| !l.remaining.is_zero()) {
                    out.movements.push(expiry(lot.remaining, id, None, at));
                    out.expired_credits = out.expired_credits.checked_add(lot.remaining)?;
                    lot.remaining = Credits::ZERO;
                    touched.push(id);
                }
            }
        }
    }
    touched.sort_unstable();
    touched.dedup();
    out.lot_remaining = touched
        .into_iter()
        .filter_map(|id| lots.get(&id).map(|l| (id, l.remaining)))
        .collect();
    Ok(out)
}

fn expiry(amount: Credits, lot_id: LotId, hold_id: Option<HoldId>, at: Timestamp) -> Movement {
    Movement {
        kind: EntryKind::Expiry,
        amount_units: -amount.units(),
        lot_id: Some(lot_id),
        hold_id,
        effective_at: at,
    }
}
