//! Model-based test: random sequences of ledger operations on three accounts, played on
//! the store and on a plain in-memory model of the same rules, compared after every step.
//!
//! The model keeps lots and holds in `Vec`s and settles eagerly: before each step it plays
//! every hold and lot expiry due by "now" in time order, exactly as `ledger::settle` does
//! lazily (holds first at equal instants; a hold released after its lot expired gives its
//! credits straight to expiry). Its balance history, with each movement's effective time,
//! is what `Store::balance_at` must answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use libtest_mimic::Failed;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::{EntryKind, HoldStatus, LedgerError, Timestamp};
use iap_sidecar::store::GrantRequest;

use crate::support::{Backend, DbOptions, ErrKind, Figures, MINUTE, TestDb, audit_clean, units};

const ACCOUNTS: usize = 3;

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
    /// Captures one of the holds still open in the model.
    Capture { hold: Index, mode: CaptureMode },
    /// Cancels one of the holds still open in the model.
    Cancel { hold: Index },
    /// Captures or cancels a hold already closed (captured, cancelled or expired).
    Repeat { hold: Index, kind: RepeatKind },
    /// A capture or cancel with a token no hold has.
    UnknownToken { capture: bool },
    Advance { minutes: i64 },
    /// The sweeper's job on one account.
    Settle { acc: usize },
}

#[derive(Clone, Debug)]
enum CaptureMode {
    /// `hold × permille / 1000`, strictly less than the hold (possibly 0).
    Partial(i64),
    Exact,
    /// The hold plus this many units.
    Over(i64),
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
        4 => Just(None),
        1 => Just(Some(0i64)),
        3 => (10i64..=480).prop_map(Some),
        2 => (1i64..=8).prop_map(|h| Some(h * 60)),
    ];
    let mode = prop_oneof![
        3 => (0i64..1000).prop_map(CaptureMode::Partial),
        2 => Just(CaptureMode::Exact),
        2 => (1i64..=100_000).prop_map(CaptureMode::Over),
    ];
    let repeat = prop_oneof![
        3 => Just(RepeatKind::CaptureSame),
        1 => (0i64..=200_000).prop_map(RepeatKind::CaptureOther),
        2 => Just(RepeatKind::Cancel),
    ];
    prop_oneof![
        3 => (acc.clone(), 1i64..=300_000, expiry).prop_map(|(acc, units, expires_in_min)| {
            Op::Grant { acc, units, expires_in_min }
        }),
        5 => (acc.clone(), 1i64..=150_000, 1i64..=6)
            .prop_map(|(acc, units, ttl_hours)| Op::Authorize { acc, units, ttl_hours }),
        4 => (any::<Index>(), mode).prop_map(|(hold, mode)| Op::Capture { hold, mode }),
        2 => any::<Index>().prop_map(|hold| Op::Cancel { hold }),
        2 => (any::<Index>(), repeat).prop_map(|(hold, kind)| Op::Repeat { hold, kind }),
        1 => any::<bool>().prop_map(|capture| Op::UnknownToken { capture }),
        3 => prop_oneof![1i64..=30, 30i64..=240].prop_map(|minutes| Op::Advance { minutes }),
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
}

impl Model {
    fn new() -> Model {
        Model {
            accounts: vec![MAccount::default(); ACCOUNTS],
            ..Model::default()
        }
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
                for (lot_id, amount) in allocations {
                    let lot = self.lot_mut(lot_id);
                    if lot.expires_at < at {
                        self.movement(acc, -amount, at);
                    } else {
                        lot.remaining += amount;
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
                    self.movement(acc, -left, at);
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
        let lot = self.lot_mut(lot_id);
        if lot.expires_at <= now {
            self.movement(acc, -amount, now);
        } else {
            lot.remaining += amount;
        }
    }

    fn grant(&mut self, acc: usize, amount: i64, expires_at: i64, now: i64, lot_id: i64) -> Outcome {
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
    service_id: i64,
    accounts: Vec<i64>,
    model: Model,
    /// The clock at every step so far (probed with `balance_at`).
    step_times: Vec<i64>,
}

impl Case<'_> {
    fn now(&self) -> i64 {
        self.db.now().0
    }

    /// A token for an open hold (`open`) or a closed one, if the model has any.
    fn pick_hold(&self, index: &Index, open: bool) -> Option<(String, usize)> {
        let candidates: Vec<usize> = (0..self.model.holds.len())
            .filter(|&i| (self.model.holds[i].status == HoldStatus::Open) == open)
            .collect();
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

    fn capture(&mut self, token: &str, amount: i64) -> (Outcome, Outcome) {
        let now = self.now();
        let got = Self::closed(self.db.store.capture(token, units(amount), Some(self.service_id)));
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
        let store = &self.db.store;
        let (got, want, acc) = match op {
            Op::Advance { minutes } => {
                self.db.advance(minutes * MINUTE);
                let now = self.now();
                self.model.settle(now);
                return Ok(None);
            }
            Op::Grant {
                acc,
                units: amount,
                expires_in_min,
            } => {
                let expires_at = expires_in_min.map_or(NEVER.0, |m| now + m * MINUTE);
                let result = store.grant(&GrantRequest {
                    account_id: self.accounts[*acc],
                    amount: units(*amount),
                    expires_at: Timestamp(expires_at),
                    origin: EntryKind::Grant,
                    reference: None,
                    description: Some("model grant"),
                });
                let lot_id = result.as_ref().map_or(-1, |g| g.lot_id);
                let got = from_store(result, |g| Outcome::Granted(g.balance.into()));
                let want = self.model.grant(*acc, *amount, expires_at, now, lot_id);
                (got, want, Some(*acc))
            }
            Op::Authorize {
                acc,
                units: amount,
                ttl_hours,
            } => {
                let result = store.authorize(
                    self.accounts[*acc],
                    units(*amount),
                    *ttl_hours,
                    Some("model hold"),
                );
                let stored = result
                    .as_ref()
                    .ok()
                    .map(|(hold, token, _)| (hold.id, token.clone()));
                let got = from_store(result, |(hold, _, balance)| Outcome::Authorized {
                    amount: hold.amount.units(),
                    expires_at: hold.expires_at.0,
                    figures: balance.into(),
                });
                let expires_at = now + ttl_hours * 60 * MINUTE;
                let want = self.model.authorize(
                    *acc,
                    *amount,
                    expires_at,
                    now,
                    stored.as_ref().map(|(id, t)| (*id, t.as_str())),
                );
                (got, want, Some(*acc))
            }
            Op::Capture { hold, mode } => match self.pick_hold(hold, true) {
                Some((token, i)) => {
                    let held = self.model.holds[i].amount;
                    let amount = match mode {
                        CaptureMode::Partial(permille) => held * permille / 1000,
                        CaptureMode::Exact => held,
                        CaptureMode::Over(extra) => held + extra,
                    };
                    let acc = self.model.holds[i].acc;
                    let (got, want) = self.capture(&token, amount);
                    (got, want, Some(acc))
                }
                None => {
                    let (got, want) = self.capture("no-such-hold", 1);
                    (got, want, None)
                }
            },
            Op::Cancel { hold } => match self.pick_hold(hold, true) {
                Some((token, i)) => {
                    let acc = self.model.holds[i].acc;
                    let (got, want) = self.cancel(&token);
                    (got, want, Some(acc))
                }
                None => {
                    let (got, want) = self.cancel("no-such-hold");
                    (got, want, None)
                }
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
        Ok(if got.is_ok() { acc } else { None })
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
            for t in [now - 1, probe_time, now] {
                let got = store
                    .balance_at(id, Timestamp(t))
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
                .map(|l| (l.id, l.remaining.units()))
                .collect();
            let want = self.model.lots_with_credits(i);
            if lots != want {
                return Err(format!("account {i}: lots {lots:?}, model {want:?}"));
            }
            let mut holds: Vec<i64> = store
                .open_holds(id)
                .map_err(|e| format!("open_holds: {e}"))?
                .iter()
                .map(|h| h.id)
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

fn run_case(db: &TestDb, n: usize, steps: &[Step]) -> Result<(), String> {
    let service = db.service(&format!("model{n}"))?;
    let accounts = (0..ACCOUNTS)
        .map(|i| db.account(service.id, &format!("model{n}-acc{i}")).map(|a| a.id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut case = Case {
        db,
        service_id: service.id,
        accounts,
        model: Model::new(),
        step_times: Vec::new(),
    };
    for (i, (op, probe)) in steps.iter().enumerate() {
        let written = case
            .step(op)
            .map_err(|e| format!("step {i} {op:?}: {e}"))?;
        case.check(probe, written)
            .map_err(|e| format!("after step {i} {op:?}: {e}"))?;
    }
    Ok(())
}

pub fn model_random_sequences(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions { pool_size: Some(4) })?;
    let cases = if backend.is_postgres() { 24 } else { 48 };
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 400,
        max_shrink_time: 45_000,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = AtomicUsize::new(0);
    let result = runner.run(&steps_strategy(), |steps| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        run_case(&db, n, &steps).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, steps)) => Err(format!(
            "{reason}\nminimal failing sequence ({} steps):\n{steps:#?}",
            steps.len()
        )
        .into()),
        Err(TestError::Abort(reason)) => Err(format!("proptest aborted: {reason}").into()),
    }
}
