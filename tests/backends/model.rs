//! Model-based test: random sequences of ledger operations on three accounts, played on
//! the store and on a plain in-memory model of the same rules, compared after every step.
//!
//! The model keeps lots and holds in `Vec`s and settles eagerly: before each step it plays
//! every hold and lot expiry due by "now" in time order, exactly as `ledger::settle` does
//! lazily (holds first at equal instants; a hold released after its lot expired gives its
//! credits straight to expiry). Its balance history, with each movement's effective time,
//! is what `Store::balance_at` must answer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use libtest_mimic::Failed;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::{AccountId, EntryKind, HoldStatus, LedgerError, ServiceId, Timestamp};
use iap_sidecar::store::GrantRequest;

use crate::support::{Backend, DbOptions, ErrKind, Figures, MINUTE, TestDb, audit_clean, units};

const ACCOUNTS: usize = 3;

/// Outcomes and rules every run reaches many times (parts of the coverage summary's keys).
const REQUIRED_COVERAGE: &[&str] = &[
    "grant: ok",
    "InvalidExpiry",
    "authorize: ok",
    "authorize: insufficient",
    "capture: ok",
    "cancel: ok",
    "replayed(captured)",
    "replayed(cancelled)",
    "replayed(expired)",
    "HoldExpired",
    "closed(captured)",
    "closed(cancelled)",
    "settle: ok",
    "rule: hold expired",
    "rule: lot expired",
    "rule: over-capture draws extra credits",
    "rule: held credits expire with their hold",
];

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Credits `units`; the lot expires `expires_in_min` minutes from now (0: refused).
    Grant {
        acc: usize,
        units: i64,
        expires_in_min: Option<i64>,
    },
    Authorize {
        acc: usize,
        units: i64,
        ttl_hours: i64,
    },
    /// Authorizes exactly the available credits, plus `delta` units (-1, 0 or 1).
    AuthorizeAvailable {
        acc: usize,
        delta: i64,
        ttl_hours: i64,
    },
    /// Captures one of the holds still open in the model.
    Capture {
        hold: Index,
        mode: CaptureMode,
    },
    /// Cancels one of the holds still open in the model.
    Cancel {
        hold: Index,
    },
    /// Captures or cancels a hold already closed (captured, cancelled or expired).
    Repeat {
        hold: Index,
        kind: RepeatKind,
    },
    /// A capture or cancel with a token no hold has.
    UnknownToken {
        capture: bool,
    },
    Advance {
        minutes: i64,
    },
    /// Moves the clock to a future lot or hold expiry, plus `offset` µs (-1, 0 or 1):
    /// the boundaries where the rules change.
    AdvanceToExpiry {
        which: Index,
        offset: i64,
    },
    /// The sweeper's job on one account.
    Settle {
        acc: usize,
    },
}

#[derive(Clone, Debug)]
enum CaptureMode {
    /// `hold × permille / 1000`, strictly less than the hold (possibly 0).
    Partial(i64),
    Exact,
    /// The hold plus this many units.
    Over(i64),
    /// The hold plus exactly the available credits, plus `delta` units (-1, 0 or 1).
    OverAvailable(i64),
}

#[derive(Clone, Debug)]
enum RepeatKind {
    /// Same amount as captured (the hold's amount if it was never captured).
    CaptureSame,
    CaptureOther(i64),
    Cancel,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let acc = 0..ACCOUNTS;
    let expiry = prop_oneof![
        2 => Just(None),
        1 => Just(Some(0i64)),
        3 => (10i64..=480).prop_map(Some),
        // Whole hours, like hold lifetimes: lots and holds expiring at the same instant.
        3 => (1i64..=6).prop_map(|h| Some(h * 60)),
    ];
    let mode = prop_oneof![
        3 => (0i64..1000).prop_map(CaptureMode::Partial),
        2 => Just(CaptureMode::Exact),
        2 => (1i64..=100_000).prop_map(CaptureMode::Over),
        1 => (-1i64..=1).prop_map(CaptureMode::OverAvailable),
    ];
    let repeat = prop_oneof![
        3 => Just(RepeatKind::CaptureSame),
        1 => (0i64..=200_000).prop_map(RepeatKind::CaptureOther),
        2 => Just(RepeatKind::Cancel),
    ];
    prop_oneof![
        4 => (acc.clone(), 1i64..=300_000, expiry).prop_map(|(acc, units, expires_in_min)| {
            Op::Grant { acc, units, expires_in_min }
        }),
        5 => (acc.clone(), 1i64..=100_000, 1i64..=6)
            .prop_map(|(acc, units, ttl_hours)| Op::Authorize { acc, units, ttl_hours }),
        1 => (acc.clone(), -1i64..=1, 1i64..=6).prop_map(|(acc, delta, ttl_hours)| {
            Op::AuthorizeAvailable { acc, delta, ttl_hours }
        }),
        4 => (any::<Index>(), mode).prop_map(|(hold, mode)| Op::Capture { hold, mode }),
        2 => any::<Index>().prop_map(|hold| Op::Cancel { hold }),
        2 => (any::<Index>(), repeat).prop_map(|(hold, kind)| Op::Repeat { hold, kind }),
        1 => any::<bool>().prop_map(|capture| Op::UnknownToken { capture }),
        3 => prop_oneof![1i64..=30, 30i64..=240, (1i64..=3).prop_map(|h| h * 60)]
            .prop_map(|minutes| Op::Advance { minutes }),
        2 => (any::<Index>(), -1i64..=1)
            .prop_map(|(which, offset)| Op::AdvanceToExpiry { which, offset }),
        2 => acc.prop_map(|acc| Op::Settle { acc }),
    ]
}

/// A step and the index that picks the past time probed with `balance_at` after it.
type Step = (Op, Index);

fn steps_strategy() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((op_strategy(), any::<Index>()), 1..=80)
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct MLot {
    id: i64,
    acc: usize,
    expires_at: i64,
    remaining: i64,
}

#[derive(Clone, Debug)]
struct MHold {
    id: i64,
    token: String,
    acc: usize,
    amount: i64,
    expires_at: i64,
    status: HoldStatus,
    captured: Option<i64>,
    /// (lot id, units) taken from each lot at authorize time.
    allocations: Vec<(i64, i64)>,
}

#[derive(Clone, Debug, Default)]
struct MAccount {
    balance: i64,
    reserved: i64,
    /// (effective time, balance after): every movement, in journal order.
    history: Vec<(i64, i64)>,
}

/// What an operation answered, as far as the test compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Granted(Figures),
    Authorized {
        amount: i64,
        expires_at: i64,
        figures: Figures,
    },
    Closed {
        status: HoldStatus,
        captured: Option<i64>,
        replayed: bool,
        figures: Figures,
    },
    Settled(Figures),
    Refused(ErrKind),
}

impl Outcome {
    fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Refused(_))
    }

    /// A short name for the coverage summary.
    fn label(&self) -> String {
        match self {
            Outcome::Closed {
                replayed: true,
                status,
                ..
            } => format!("replayed({status})"),
            Outcome::Refused(ErrKind::Insufficient { .. }) => "insufficient".into(),
            Outcome::Refused(ErrKind::HoldClosed(status)) => format!("closed({status})"),
            Outcome::Refused(e) => format!("{e:?}"),
            _ => "ok".into(),
        }
    }
}

fn from_store<T>(result: Result<T, LedgerError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(v) => ok(v),
        Err(e) => Outcome::Refused(ErrKind::from(&e)),
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    accounts: Vec<MAccount>,
    lots: Vec<MLot>,
    holds: Vec<MHold>,
    /// How often each interesting rule was exercised (coverage summary).
    seen: BTreeMap<String, u64>,
    /// Accounts with expiries the store has not written yet: time moved past an open
    /// hold's or a credited lot's expiry since the account's last successful write.
    dirty: Vec<bool>,
}

impl Model {
    fn new() -> Model {
        Model {
            accounts: vec![MAccount::default(); ACCOUNTS],
            dirty: vec![false; ACCOUNTS],
            ..Model::default()
        }
    }

    fn note(&mut self, what: &str) {
        *self.seen.entry(what.to_owned()).or_default() += 1;
    }

    fn figures(&self, acc: usize) -> Figures {
        let a = &self.accounts[acc];
        Figures::new(a.balance, a.reserved)
    }

    fn available(&self, acc: usize) -> i64 {
        self.accounts[acc].balance - self.accounts[acc].reserved
    }

    fn lot_mut(&mut self, id: i64) -> &mut MLot {
        self.lots
            .iter_mut()
            .find(|l| l.id == id)
            .expect("model lot exists")
    }

    fn lot_key(&self, id: i64) -> (i64, i64) {
        let lot = self.lots.iter().find(|l| l.id == id).expect("model lot");
        (lot.expires_at, lot.id)
    }

    fn hold_index(&self, token: &str) -> Option<usize> {
        self.holds.iter().position(|h| h.token == token)
    }

    /// Moves the balance of `acc` by `delta` at `at` and records it.
    fn movement(&mut self, acc: usize, delta: i64, at: i64) {
        let a = &mut self.accounts[acc];
        a.balance += delta;
        a.history.push((at, a.balance));
    }

    /// Plays every hold and lot expiry due by `now`, in time order; holds before lots at
    /// the same instant, then by id.
    fn settle(&mut self, now: i64) {
        let mut events: Vec<(i64, u8, i64)> = Vec::new();
        for h in &self.holds {
            if h.status == HoldStatus::Open && h.expires_at <= now {
                events.push((h.expires_at, 0, h.id));
            }
        }
        for l in &self.lots {
            if l.expires_at <= now && l.remaining > 0 {
                events.push((l.expires_at, 1, l.id));
            }
        }
        // A lot emptied by holds expires with nothing left, unless a hold released
        // before (or at) its expiry gives credits back: give those lots an event too.
        for h in &self.holds {
            if h.status == HoldStatus::Open && h.expires_at <= now {
                for &(lot_id, _) in &h.allocations {
                    let (expires_at, id) = self.lot_key(lot_id);
                    if expires_at <= now && !events.contains(&(expires_at, 1, id)) {
                        events.push((expires_at, 1, id));
                    }
                }
            }
        }
        events.sort_unstable();
        for (at, kind, id) in events {
            if kind == 0 {
                let i = self
                    .holds
                    .iter()
                    .position(|h| h.id == id)
                    .expect("model hold");
                let acc = self.holds[i].acc;
                let allocations = std::mem::take(&mut self.holds[i].allocations);
                self.dirty[acc] = true;
                self.note("rule: hold expired");
                for (lot_id, amount) in allocations {
                    let lot_expiry = self.lot_mut(lot_id).expires_at;
                    if lot_expiry < at {
                        self.note("rule: held credits expire with their hold");
                        self.movement(acc, -amount, at);
                    } else {
                        if lot_expiry == at {
                            self.note("rule: hold and its lot expire at the same instant");
                        }
                        self.lot_mut(lot_id).remaining += amount;
                    }
                }
                let hold = &mut self.holds[i];
                hold.status = HoldStatus::Expired;
                self.accounts[acc].reserved -= hold.amount;
            } else {
                let lot = self.lot_mut(id);
                let (acc, left) = (lot.acc, lot.remaining);
                if left > 0 {
                    lot.remaining = 0;
                    self.dirty[acc] = true;
                    self.movement(acc, -left, at);
                    self.note("rule: lot expired");
                }
            }
        }
    }

    /// Takes `amount` from the unexpired lots of `acc`, earliest expiry then oldest first.
    fn draw(&mut self, acc: usize, amount: i64, now: i64) -> Vec<(i64, i64)> {
        let mut order: Vec<(i64, i64)> = self
            .lots
            .iter()
            .filter(|l| l.acc == acc && l.expires_at > now && l.remaining > 0)
            .map(|l| (l.expires_at, l.id))
            .collect();
        order.sort_unstable();
        let mut missing = amount;
        let mut taken = Vec::new();
        for (_, id) in order {
            if missing == 0 {
                break;
            }
            let lot = self.lot_mut(id);
            let take = lot.remaining.min(missing);
            lot.remaining -= take;
            missing -= take;
            taken.push((id, take));
        }
        assert_eq!(missing, 0, "model: lots short of available credits");
        taken
    }

    /// Gives credits of a closing hold back to their lot, or expires them now if the lot
    /// has expired.
    fn release(&mut self, acc: usize, lot_id: i64, amount: i64, now: i64) {
        if amount == 0 {
            return;
        }
        if self.lot_mut(lot_id).expires_at <= now {
            self.note("rule: released credits of an expired lot expire");
            self.movement(acc, -amount, now);
        } else {
            self.lot_mut(lot_id).remaining += amount;
        }
    }

    fn grant(
        &mut self,
        acc: usize,
        amount: i64,
        expires_at: i64,
        now: i64,
        lot_id: i64,
    ) -> Outcome {
        if expires_at <= now {
            return Outcome::Refused(ErrKind::InvalidExpiry);
        }
        self.lots.push(MLot {
            id: lot_id,
            acc,
            expires_at,
            remaining: amount,
        });
        self.movement(acc, amount, now);
        Outcome::Granted(self.figures(acc))
    }

    fn authorize(
        &mut self,
        acc: usize,
        amount: i64,
        expires_at: i64,
        now: i64,
        stored: Option<(i64, &str)>,
    ) -> Outcome {
        let available = self.available(acc);
        if amount > available {
            return Outcome::Refused(ErrKind::Insufficient {
                needed: amount,
                available,
            });
        }
        let Some((id, token)) = stored else {
            // The store refused what the model accepts; the comparison reports it.
            return Outcome::Authorized {
                amount,
                expires_at,
                figures: Figures::new(0, 0),
            };
        };
        let allocations = self.draw(acc, amount, now);
        self.accounts[acc].reserved += amount;
        self.holds.push(MHold {
            id,
            token: token.to_owned(),
            acc,
            amount,
            expires_at,
            status: HoldStatus::Open,
            captured: None,
            allocations,
        });
        Outcome::Authorized {
            amount,
            expires_at,
            figures: self.figures(acc),
        }
    }

    fn capture(&mut self, token: &str, amount: i64, now: i64) -> Outcome {
        let Some(i) = self.hold_index(token) else {
            return Outcome::Refused(ErrKind::UnknownHold);
        };
        let hold = &self.holds[i];
        match hold.status {
            HoldStatus::Open => {}
            HoldStatus::Captured if hold.captured == Some(amount) => {
                return Outcome::Closed {
                    status: HoldStatus::Captured,
                    captured: Some(amount),
                    replayed: true,
                    figures: self.figures(hold.acc),
                };
            }
            HoldStatus::Expired => return Outcome::Refused(ErrKind::HoldExpired),
            status => return Outcome::Refused(ErrKind::HoldClosed(status)),
        }
        let (acc, held) = (hold.acc, hold.amount);
        if amount > held {
            let extra = amount - held;
            let available = self.available(acc);
            if extra > available {
                return Outcome::Refused(ErrKind::Insufficient {
                    needed: extra,
                    available,
                });
            }
            self.draw(acc, extra, now);
            self.note("rule: over-capture draws extra credits");
        }
        if self.holds[i]
            .allocations
            .iter()
            .any(|&(lot_id, _)| self.lot_key(lot_id).0 <= now)
        {
            self.note("rule: capture consumes credits of an expired lot");
        }
        self.movement(acc, -amount, now);
        let mut allocations = std::mem::take(&mut self.holds[i].allocations);
        allocations.sort_by_key(|&(lot_id, _)| self.lot_key(lot_id));
        let mut to_consume = amount.min(held);
        for (lot_id, part) in allocations {
            let consumed = part.min(to_consume);
            to_consume -= consumed;
            self.release(acc, lot_id, part - consumed, now);
        }
        let hold = &mut self.holds[i];
        hold.status = HoldStatus::Captured;
        hold.captured = Some(amount);
        self.accounts[acc].reserved -= held;
        Outcome::Closed {
            status: HoldStatus::Captured,
            captured: Some(amount),
            replayed: false,
            figures: self.figures(acc),
        }
    }

    fn cancel(&mut self, token: &str, now: i64) -> Outcome {
        let Some(i) = self.hold_index(token) else {
            return Outcome::Refused(ErrKind::UnknownHold);
        };
        let hold = &self.holds[i];
        match hold.status {
            HoldStatus::Open => {}
            status @ (HoldStatus::Cancelled | HoldStatus::Expired) => {
                return Outcome::Closed {
                    status,
                    captured: None,
                    replayed: true,
                    figures: self.figures(hold.acc),
                };
            }
            status => return Outcome::Refused(ErrKind::HoldClosed(status)),
        }
        let (acc, held) = (hold.acc, hold.amount);
        for (lot_id, part) in std::mem::take(&mut self.holds[i].allocations) {
            self.release(acc, lot_id, part, now);
        }
        self.holds[i].status = HoldStatus::Cancelled;
        self.accounts[acc].reserved -= held;
        Outcome::Closed {
            status: HoldStatus::Cancelled,
            captured: None,
            replayed: false,
            figures: self.figures(acc),
        }
    }

    /// The balance in effect at `t`: the last movement effective at or before it.
    fn balance_at(&self, acc: usize, t: i64) -> i64 {
        self.accounts[acc]
            .history
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(0, |&(_, balance)| balance)
    }

    /// Lots of `acc` with credits left as (id, remaining), earliest expiry first.
    fn lots_with_credits(&self, acc: usize) -> Vec<(i64, i64)> {
        let mut lots: Vec<&MLot> = self
            .lots
            .iter()
            .filter(|l| l.acc == acc && l.remaining > 0)
            .collect();
        lots.sort_by_key(|l| (l.expires_at, l.id));
        lots.iter().map(|l| (l.id, l.remaining)).collect()
    }

    fn open_hold_ids(&self, acc: usize) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .holds
            .iter()
            .filter(|h| h.acc == acc && h.status == HoldStatus::Open)
            .map(|h| h.id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

// ---------------------------------------------------------------------------------------
// Playing a sequence on the store and the model
// ---------------------------------------------------------------------------------------

struct Case<'a> {
    db: &'a TestDb,
    service_id: ServiceId,
    accounts: Vec<AccountId>,
    model: Model,
    /// The clock at every step so far (probed with `balance_at`).
    step_times: Vec<i64>,
}

impl Case<'_> {
    fn now(&self) -> i64 {
        self.db.now().micros()
    }

    /// A token for an open hold (`open`) or a closed one; any hold when there is none
    /// of that kind; `None` when the model has no hold at all.
    fn pick_hold(&self, index: &Index, open: bool) -> Option<(String, usize)> {
        let mut candidates: Vec<usize> = (0..self.model.holds.len())
            .filter(|&i| (self.model.holds[i].status == HoldStatus::Open) == open)
            .collect();
        if candidates.is_empty() {
            candidates = (0..self.model.holds.len()).collect();
        }
        if candidates.is_empty() {
            return None;
        }
        let i = candidates[index.index(candidates.len())];
        Some((self.model.holds[i].token.clone(), i))
    }

    fn closed(result: Result<iap_sidecar::ledger::ops::CloseOutcome, LedgerError>) -> Outcome {
        from_store(result, |o| Outcome::Closed {
            status: o.hold.status,
            captured: o.hold.captured.map(|c| c.units()),
            replayed: o.replayed,
            figures: o.balance.into(),
        })
    }

    fn authorize(&mut self, acc: usize, amount: i64, ttl_hours: i64) -> (Outcome, Outcome) {
        let now = self.now();
        let result = self.db.store.authorize(
            self.accounts[acc],
            units(amount),
            ttl_hours,
            Some("model hold"),
        );
        let stored = result
            .as_ref()
            .ok()
            .map(|(hold, token, _)| (hold.id, token.clone()));
        let got = from_store(result, |(hold, _, balance)| Outcome::Authorized {
            amount: hold.amount.units(),
            expires_at: hold.expires_at.micros(),
            figures: balance.into(),
        });
        let expires_at = now + ttl_hours * 60 * MINUTE;
        let want = self.model.authorize(
            acc,
            amount,
            expires_at,
            now,
            stored.as_ref().map(|(id, t)| (id.stored(), t.as_str())),
        );
        (got, want)
    }

    fn capture(&mut self, token: &str, amount: i64) -> (Outcome, Outcome) {
        let now = self.now();
        let got = Self::closed(self.db.store.capture(
            token,
            Some(units(amount)),
            Some(self.service_id),
        ));
        let want = self.model.capture(token, amount, now);
        (got, want)
    }

    fn cancel(&mut self, token: &str) -> (Outcome, Outcome) {
        let now = self.now();
        let got = Self::closed(self.db.store.cancel(token, Some(self.service_id)));
        let want = self.model.cancel(token, now);
        (got, want)
    }

    /// Plays one step; returns the account a successful write touched.
    fn step(&mut self, op: &Op) -> Result<Option<usize>, String> {
        let now = self.now();
        self.step_times.push(now);
        self.model.settle(now);
        let db = self.db;
        let store = &db.store;
        let (got, want, acc) = match op {
            Op::Advance { minutes } => {
                self.db.advance(minutes * MINUTE);
                let now = self.now();
                self.model.settle(now);
                return Ok(None);
            }
            Op::AdvanceToExpiry { which, offset } => {
                let mut future: Vec<i64> = self
                    .model
                    .lots
                    .iter()
                    .map(|l| l.expires_at)
                    .chain(self.model.holds.iter().map(|h| h.expires_at))
                    .filter(|&t| t != NEVER.micros())
                    .map(|t| t + offset)
                    .filter(|&t| t > now)
                    .collect();
                future.sort_unstable();
                future.dedup();
                if !future.is_empty() {
                    self.db.advance(future[which.index(future.len())] - now);
                    let now = self.now();
                    self.model.settle(now);
                    self.model.note("advance to an expiry");
                }
                return Ok(None);
            }
            Op::Grant {
                acc,
                units: amount,
                expires_in_min,
            } => {
                let expires_at = expires_in_min.map_or(NEVER.micros(), |m| now + m * MINUTE);
                let result = store.grant(&GrantRequest {
                    account_id: self.accounts[*acc],
                    amount: units(*amount),
                    expires_at: Timestamp::from_micros(expires_at),
                    origin: EntryKind::Grant,
                    reference: None,
                    description: Some("model grant"),
                });
                let lot_id = result.as_ref().map_or(-1, |g| g.lot_id.stored());
                let got = from_store(result, |g| Outcome::Granted(g.balance.into()));
                let want = self.model.grant(*acc, *amount, expires_at, now, lot_id);
                (got, want, Some(*acc))
            }
            Op::Authorize {
                acc,
                units: amount,
                ttl_hours,
            } => {
                let (got, want) = self.authorize(*acc, *amount, *ttl_hours);
                (got, want, Some(*acc))
            }
            Op::AuthorizeAvailable {
                acc,
                delta,
                ttl_hours,
            } => {
                let amount = (self.model.available(*acc) + delta).max(0);
                let (got, want) = self.authorize(*acc, amount, *ttl_hours);
                (got, want, Some(*acc))
            }
            Op::Capture { hold, mode } => match self.pick_hold(hold, true) {
                Some((token, i)) => {
                    let held = self.model.holds[i].amount;
                    let amount = match mode {
                        CaptureMode::Partial(permille) => held * permille / 1000,
                        CaptureMode::Exact => held,
                        CaptureMode::Over(extra) => held + extra,
                        CaptureMode::OverAvailable(delta) => {
                            let acc = self.model.holds[i].acc;
                            (held + self.model.available(acc) + delta).max(0)
                        }
                    };
                    let acc = self.model.holds[i].acc;
                    let (got, want) = self.capture(&token, amount);
                    (got, want, Some(acc))
                }
                None => return Ok(None),
            },
            Op::Cancel { hold } => match self.pick_hold(hold, true) {
                Some((token, i)) => {
                    let acc = self.model.holds[i].acc;
                    let (got, want) = self.cancel(&token);
                    (got, want, Some(acc))
                }
                None => return Ok(None),
            },
            Op::Repeat { hold, kind } => match self.pick_hold(hold, false) {
                Some((token, i)) => {
                    let h = &self.model.holds[i];
                    let acc = h.acc;
                    let same = h.captured.unwrap_or(h.amount);
                    let (got, want) = match kind {
                        RepeatKind::CaptureSame => self.capture(&token, same),
                        RepeatKind::CaptureOther(amount) => self.capture(&token, *amount),
                        RepeatKind::Cancel => self.cancel(&token),
                    };
                    (got, want, Some(acc))
                }
                None => return Ok(None),
            },
            Op::UnknownToken { capture } => {
                let token = format!("unknown-{}", self.step_times.len());
                let (got, want) = if *capture {
                    self.capture(&token, 1)
                } else {
                    self.cancel(&token)
                };
                (got, want, None)
            }
            Op::Settle { acc } => {
                let got = from_store(store.settle(self.accounts[*acc]), |b| {
                    Outcome::Settled(b.into())
                });
                let want = Outcome::Settled(self.model.figures(*acc));
                (got, want, Some(*acc))
            }
        };
        if got != want {
            return Err(format!("store answered {got:?}, model expects {want:?}"));
        }
        let name = format!("{op:?}");
        let name = name
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .to_lowercase();
        self.model.note(&format!("{name}: {}", got.label()));
        if !got.is_ok() {
            // Refused: the transaction rolled back, settlement included.
            return Ok(None);
        }
        if let Some(a) = acc {
            self.model.dirty[a] = false;
        }
        Ok(acc)
    }

    /// Every figure the store reports against the model.
    fn check(&self, probe: &Index, written: Option<usize>) -> Result<(), String> {
        let store = &self.db.store;
        let now = self.now();
        let mut probes: Vec<i64> = self.step_times.clone();
        for a in &self.model.accounts {
            for &(t, _) in &a.history {
                probes.extend([t - 1, t]);
            }
        }
        let probe_time = probes[probe.index(probes.len())];
        let listed = store
            .accounts_to_settle(1_000_000)
            .map_err(|e| format!("accounts_to_settle: {e}"))?;
        for (i, &id) in self.accounts.iter().enumerate() {
            let got: Figures = store
                .balance(id)
                .map_err(|e| format!("balance(account {i}): {e}"))?
                .into();
            let want = self.model.figures(i);
            if got != want {
                return Err(format!("account {i}: balance() is {got:?}, model {want:?}"));
            }
            audit_clean(store, id).map_err(|e| format!("account {i}: {e}"))?;
            if listed.contains(&id) != self.model.dirty[i] {
                return Err(format!(
                    "account {i}: accounts_to_settle lists it: {}, model: {}",
                    listed.contains(&id),
                    self.model.dirty[i]
                ));
            }
            for t in [now - 1, probe_time, now] {
                let got = store
                    .balance_at(id, Timestamp::from_micros(t))
                    .map_err(|e| format!("balance_at(account {i}, {t}): {e}"))?
                    .units();
                let want = self.model.balance_at(i, t);
                if got != want {
                    return Err(format!(
                        "account {i}: balance_at(now{:+}µs) is {got}, model {want} (history {:?})",
                        t - now,
                        self.model.accounts[i].history
                    ));
                }
            }
        }
        // A successful write settled its account: the stored rows must match too.
        if let Some(i) = written {
            let id = self.accounts[i];
            let lots: Vec<(i64, i64)> = store
                .lots(id)
                .map_err(|e| format!("lots: {e}"))?
                .iter()
                .map(|l| (l.id.stored(), l.remaining.units()))
                .collect();
            let want = self.model.lots_with_credits(i);
            if lots != want {
                return Err(format!("account {i}: lots {lots:?}, model {want:?}"));
            }
            let mut holds: Vec<i64> = store
                .open_holds(id)
                .map_err(|e| format!("open_holds: {e}"))?
                .iter()
                .map(|h| h.id.stored())
                .collect();
            holds.sort_unstable();
            let want = self.model.open_hold_ids(i);
            if holds != want {
                return Err(format!("account {i}: open holds {holds:?}, model {want:?}"));
            }
        }
        Ok(())
    }
}

fn run_case(
    db: &TestDb,
    n: usize,
    steps: &[Step],
    coverage: &Mutex<BTreeMap<String, u64>>,
) -> Result<(), String> {
    let service = db.service(&format!("model{n}"))?;
    let accounts = (0..ACCOUNTS)
        .map(|i| {
            db.account(service.id, &format!("model{n}-acc{i}"))
                .map(|a| a.id)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut case = Case {
        db,
        service_id: service.id,
        accounts,
        model: Model::new(),
        step_times: Vec::new(),
    };
    for (i, (op, probe)) in steps.iter().enumerate() {
        let written = case.step(op).map_err(|e| format!("step {i} {op:?}: {e}"))?;
        case.check(probe, written)
            .map_err(|e| format!("after step {i} {op:?}: {e}"))?;
    }
    let mut total = coverage.lock().expect("coverage");
    for (what, n) in case.model.seen {
        *total.entry(what).or_default() += n;
    }
    *total.entry("steps".into()).or_default() += steps.len() as u64;
    Ok(())
}

pub fn model_random_sequences(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::pool(4))?;
    // IAP_SIDECAR_MODEL_CASES runs more (or fewer) sequences, e.g. for a longer soak.
    let cases = std::env::var("IAP_SIDECAR_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if backend.is_postgres() { 48 } else { 128 });
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 400,
        max_shrink_time: 45_000,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = AtomicUsize::new(0);
    let coverage = Mutex::new(BTreeMap::new());
    let result = runner.run(&steps_strategy(), |steps| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        run_case(&db, n, &steps, &coverage).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {
            let coverage = coverage.into_inner().expect("coverage");
            let summary: Vec<String> = coverage.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!(
                "[model] {}: {cases} cases; {}",
                backend.name(),
                summary.join(", ")
            );
            // Sequences this long reach every rule many times; none missing means the
            // generator still exercises what the model is there to check.
            let missing: Vec<&str> = REQUIRED_COVERAGE
                .iter()
                .copied()
                .filter(|k| !coverage.keys().any(|key| key.contains(*k)))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("the random sequences never exercised: {missing:?}").into())
            }
        }
        Err(TestError::Fail(reason, steps)) => Err(format!(
            "{reason}\nminimal failing sequence ({} steps):\n{steps:#?}",
            steps.len()
        )
        .into()),
        Err(TestError::Abort(reason)) => Err(format!("proptest aborted: {reason}").into()),
    }
}
