//! Many threads sharing one store: authorize, capture (partial, exact, over), cancel and
//! small top-ups on one hot account, then spread over eight accounts, while one more
//! thread moves the clock forward, runs the sweeper and audits snapshots. No credit may be
//! created or lost, and no operation may fail for any reason but the ledger's rules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use libtest_mimic::Failed;

use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::{
    AccountId, EntryKind, HoldId, HoldStatus, LedgerError, ServiceId, Timestamp,
};
use iap_sidecar::store::{GrantRequest, Store};

use crate::support::{
    Backend, DbOptions, HOUR, MINUTE, Rng, TestDb, audit_clean, credits, seed, units,
};

const THREADS: usize = 32;
const OPS_PER_PHASE: usize = 3000;
/// Most sweeps the clock thread makes per phase (each moves time 0-3 minutes).
const SWEEPS: usize = 150;

/// A hold some thread authorized; any thread may capture or cancel it.
#[derive(Clone)]
struct Held {
    token: String,
    amount: i64,
    account: usize,
}

/// What all threads share during a phase.
struct Shared<'a> {
    db: &'a TestDb,
    service_id: ServiceId,
    accounts: Vec<AccountId>,
    /// Units granted and captured per account, from the operations' answers.
    granted: Vec<AtomicI64>,
    captured: Vec<AtomicI64>,
    /// Holds not yet picked for capture or cancel.
    open: Mutex<Vec<Held>>,
    /// Every hold ever made: (hold id, token).
    all: Mutex<Vec<(HoldId, String)>>,
    outcomes: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<String>>,
    /// Workers done, so the sweeper stops.
    finished: AtomicUsize,
    /// Longest single operation, in microseconds of real time (lock waits included).
    slowest: AtomicI64,
}

impl Shared<'_> {
    fn count(&self, what: impl Into<String>) {
        *self
            .outcomes
            .lock()
            .expect("outcomes")
            .entry(what.into())
            .or_default() += 1;
    }

    fn fail(&self, what: String) {
        self.failures.lock().expect("failures").push(what);
    }

    /// Runs `op`, keeping the longest real time any operation took.
    fn timed<T>(&self, op: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = op();
        let micros = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        self.slowest.fetch_max(micros, Ordering::Relaxed);
        out
    }

    /// An expiry refused as "not in the future" is right only if the clock really moved
    /// past it while the operation waited for its account (the sweeper moves it fast).
    fn expired_while_waiting(&self, op: &str, e: &LedgerError, before: i64, lifetime: i64) -> bool {
        let waited = self.db.now().micros() - before;
        if matches!(e, LedgerError::InvalidExpiry(_)) && waited >= lifetime {
            self.count(format!("{op}:expired-while-waiting"));
            true
        } else {
            false
        }
    }

    /// Counts a refusal the rules allow, or records anything else as a failure.
    fn refused(&self, op: &str, e: LedgerError, allowed: &[&str]) {
        let kind = match &e {
            LedgerError::InsufficientCredit { .. } => "insufficient",
            LedgerError::HoldExpired => "expired",
            LedgerError::HoldClosed {
                status: HoldStatus::Captured,
            } => "closed(captured)",
            LedgerError::HoldClosed {
                status: HoldStatus::Cancelled,
            } => "closed(cancelled)",
            _ => "",
        };
        if allowed.contains(&kind) {
            self.count(format!("{op}:{kind}"));
        } else {
            self.count(format!("{op}:FAILED"));
            self.fail(format!("{op}: {e:?}"));
        }
    }

    /// Takes a random open hold out of the list (sometimes leaves it for others too).
    fn pick(&self, rng: &mut Rng) -> Option<Held> {
        let mut open = self.open.lock().expect("open holds");
        if open.is_empty() {
            return None;
        }
        let i = rng.below(open.len() as u64) as usize;
        if rng.below(4) == 0 {
            // Left in the list: another thread may close the same hold concurrently.
            Some(open[i].clone())
        } else {
            Some(open.swap_remove(i))
        }
    }

    /// Tops up an account; half of the lots expire within hours.
    fn grant(&self, store: &Store, rng: &mut Rng, account: usize, amount: i64) {
        let before = self.db.now().micros();
        let lifetime = rng.between(1, 4) * HOUR;
        let expires_at = if rng.below(2) == 0 {
            NEVER
        } else {
            Timestamp::from_micros(before + lifetime)
        };
        let result = self.timed(|| {
            store.grant(&GrantRequest {
                account_id: self.accounts[account],
                amount: units(amount),
                expires_at,
                origin: EntryKind::Topup,
                reference: None,
                description: Some("hammer top-up"),
            })
        });
        match result {
            Ok(_) => {
                self.granted[account].fetch_add(amount, Ordering::SeqCst);
                self.count("grant:ok");
            }
            Err(e) if self.expired_while_waiting("grant", &e, before, lifetime) => {}
            Err(e) => self.refused("grant", e, &[]),
        }
    }

    fn authorize(&self, store: &Store, rng: &mut Rng) {
        let account = rng.below(self.accounts.len() as u64) as usize;
        let amount = rng.between(5_000, 150_000);
        let ttl = rng.between(1, 6);
        let before = self.db.now().micros();
        let result = self
            .timed(|| store.authorize(self.accounts[account], units(amount), ttl, Some("hammer")));
        match result {
            Ok((hold, token, _)) => {
                if hold.amount.units() != amount || hold.status != HoldStatus::Open {
                    self.fail(format!("authorize returned {hold:?} for {amount}"));
                }
                self.all
                    .lock()
                    .expect("all holds")
                    .push((hold.id, token.clone()));
                self.open.lock().expect("open holds").push(Held {
                    token,
                    amount,
                    account,
                });
                self.count("authorize:ok");
            }
            Err(e) if self.expired_while_waiting("authorize", &e, before, ttl * HOUR) => {}
            Err(e) => self.refused("authorize", e, &["insufficient"]),
        }
    }

    fn capture(&self, store: &Store, rng: &mut Rng, held: Held) {
        let amount = match rng.below(10) {
            0..=4 => rng.between(0, held.amount - 1),
            5..=6 => held.amount,
            _ => held.amount + rng.between(1, 100_000),
        };
        let result =
            self.timed(|| store.capture(&held.token, Some(units(amount)), Some(self.service_id)));
        match result {
            Ok(outcome) => {
                if outcome.hold.captured != Some(units(amount))
                    || outcome.hold.status != HoldStatus::Captured
                {
                    self.fail(format!("capture of {amount} returned {:?}", outcome.hold));
                }
                if outcome.replayed {
                    self.count("capture:replayed");
                } else {
                    let got = outcome.hold.captured.map_or(0, |c| c.units());
                    self.captured[held.account].fetch_add(got, Ordering::SeqCst);
                    self.count("capture:ok");
                }
            }
            Err(e) => {
                if matches!(e, LedgerError::InsufficientCredit { .. }) {
                    // Still open: put it back for a later capture or cancel.
                    self.open.lock().expect("open holds").push(held);
                }
                self.refused(
                    "capture",
                    e,
                    &[
                        "insufficient",
                        "expired",
                        "closed(captured)",
                        "closed(cancelled)",
                    ],
                );
            }
        }
    }

    fn cancel(&self, store: &Store, held: Held) {
        match self.timed(|| store.cancel(&held.token, Some(self.service_id))) {
            Ok(outcome) => {
                let status = outcome.hold.status;
                let expected = status == HoldStatus::Cancelled
                    || (outcome.replayed && status == HoldStatus::Expired);
                if !expected {
                    self.fail(format!("cancel returned {:?}", outcome.hold));
                }
                self.count(match (outcome.replayed, status) {
                    (false, _) => "cancel:ok",
                    (true, HoldStatus::Expired) => "cancel:replayed(expired)",
                    (true, _) => "cancel:replayed",
                });
            }
            Err(e) => self.refused("cancel", e, &["closed(captured)"]),
        }
    }

    fn worker(&self, store: &Store, rng: &mut Rng, ops: usize) {
        for _ in 0..ops {
            match rng.below(100) {
                0..=5 => {
                    let account = rng.below(self.accounts.len() as u64) as usize;
                    let amount = rng.between(10_000, 150_000);
                    self.grant(store, rng, account, amount);
                }
                6..=49 => self.authorize(store, rng),
                50..=84 => match self.pick(rng) {
                    Some(held) => self.capture(store, rng, held),
                    None => self.authorize(store, rng),
                },
                _ => match self.pick(rng) {
                    Some(held) => self.cancel(store, held),
                    None => self.authorize(store, rng),
                },
            }
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves the clock, settles what expired and audits snapshots, while workers run.
    fn sweeper(&self, rng: &mut Rng) {
        let store = &self.db.store;
        for _ in 0..SWEEPS {
            if self.finished.load(Ordering::SeqCst) == THREADS {
                return;
            }
            self.db.advance(rng.between(0, 3) * MINUTE);
            match store.accounts_to_settle(100) {
                Ok(ids) => {
                    for id in ids {
                        match store.settle(id) {
                            Ok(_) => self.count("sweeper:settle"),
                            Err(e) => self.fail(format!("settle({id}): {e:?}")),
                        }
                    }
                }
                Err(e) => self.fail(format!("accounts_to_settle: {e:?}")),
            }
            // Every committed state must be sound, even mid-hammer.
            let id = self.accounts[rng.below(self.accounts.len() as u64) as usize];
            match audit_clean(store, id) {
                Ok(()) => self.count("sweeper:audit"),
                Err(e) => self.fail(format!("mid-run audit: {e}")),
            }
            if let Err(e) = store.balance(id) {
                self.fail(format!("balance({id}): {e:?}"));
            }
        }
    }
}

/// Sums of one account's journal by kind, in units.
#[derive(Debug, Default)]
struct JournalSums {
    credited: i64,
    captured: i64,
    expired: i64,
}

fn journal_sums(db: &TestDb, id: AccountId) -> Result<JournalSums, String> {
    let entries = db
        .store
        .journal(id, None, 1_000_000)
        .map_err(|e| format!("journal: {e}"))?;
    let mut sums = JournalSums::default();
    for e in entries {
        match e.kind {
            EntryKind::Grant | EntryKind::Topup | EntryKind::Trial => {
                sums.credited += e.amount_units
            }
            EntryKind::Capture => sums.captured -= e.amount_units,
            EntryKind::Expiry => sums.expired -= e.amount_units,
        }
    }
    Ok(sums)
}

/// One phase of the hammer; with `processes` > 1 the workers share that many stores,
/// each with its own pool and ledger engine, as sidecar processes on one database would.
fn phase(
    db: &TestDb,
    backend: &Backend,
    label: &str,
    accounts: usize,
    initial: i64,
    seed: u64,
    processes: usize,
) -> Result<(), String> {
    let store = &db.store;
    let mut stores = vec![store.clone()];
    for _ in 1..processes {
        stores.push(db.another_store()?);
    }
    let service = db.service(&format!("hammer-{label}"))?;
    let ids = (0..accounts)
        .map(|i| {
            db.account(service.id, &format!("{label}-{i}"))
                .map(|a| a.id)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Shared {
        db,
        service_id: service.id,
        accounts: ids.clone(),
        granted: (0..accounts).map(|_| AtomicI64::new(0)).collect(),
        captured: (0..accounts).map(|_| AtomicI64::new(0)).collect(),
        open: Mutex::new(Vec::new()),
        all: Mutex::new(Vec::new()),
        outcomes: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
        finished: AtomicUsize::new(0),
        slowest: AtomicI64::new(0),
    };
    let mut rng = Rng::new(seed);
    for i in 0..accounts {
        shared.grant(store, &mut rng, i, credits(initial).units());
    }

    let started = Instant::now();
    let barrier = Barrier::new(THREADS + 1);
    let per_thread = OPS_PER_PHASE.div_ceil(THREADS);
    std::thread::scope(|s| {
        for t in 0..=THREADS {
            let shared = &shared;
            let barrier = &barrier;
            let worker_store = &stores[t % stores.len()];
            let mut rng = Rng::new(seed ^ ((t as u64 + 1) << 32));
            s.spawn(move || {
                barrier.wait();
                if t == THREADS {
                    shared.sweeper(&mut rng);
                } else {
                    shared.worker(worker_store, &mut rng, per_thread);
                }
            });
        }
    });
    let hammer_time = started.elapsed();

    let mut problems: Vec<String> = shared.failures.lock().expect("failures").clone();
    // Conservation, from the answers the threads got and from the journal:
    // granted = captured + expired + balance, and nothing else moved credits.
    let check = |problems: &mut Vec<String>, when: &str| -> Result<(), String> {
        for (i, &id) in ids.iter().enumerate() {
            if let Err(e) = audit_clean(store, id) {
                problems.push(format!("{when}: {e}"));
            }
            let b = store.balance(id).map_err(|e| format!("balance: {e}"))?;
            let sums = journal_sums(db, id)?;
            let granted = shared.granted[i].load(Ordering::SeqCst);
            let captured = shared.captured[i].load(Ordering::SeqCst);
            if sums.credited != granted || sums.captured != captured {
                problems.push(format!(
                    "{when}: account {i}: answers say granted {granted}, captured {captured}; \
                     the journal {sums:?}"
                ));
            }
            if granted - captured - sums.expired != b.balance.units() {
                problems.push(format!(
                    "{when}: account {i}: granted {granted} - captured {captured} - expired {} \
                     != balance {}",
                    sums.expired,
                    b.balance.units()
                ));
            }
            if b.reserved > b.balance
                || b.available.units() != b.balance.units() - b.reserved.units()
            {
                problems.push(format!("{when}: account {i}: figures {b:?}"));
            }
        }
        Ok(())
    };
    // Write what expired without an operation noticing, so the journal has it too.
    for &id in &ids {
        store.settle(id).map_err(|e| format!("settle: {e}"))?;
    }
    check(&mut problems, "after the hammer")?;

    // Close what is still open; afterwards nothing may stay reserved.
    let open_ids: Vec<HoldId> = ids
        .iter()
        .map(|&id| store.open_holds(id).map_err(|e| format!("open_holds: {e}")))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|h| h.id)
        .collect();
    let all = shared.all.lock().expect("all holds").clone();
    for (id, token) in all.iter().filter(|(id, _)| open_ids.contains(id)) {
        if let Err(e) = store.cancel(token, None) {
            problems.push(format!("closing hold {id}: {e:?}"));
        }
    }
    for &id in &ids {
        store.settle(id).map_err(|e| format!("settle: {e}"))?;
    }
    check(&mut problems, "after closing every hold")?;
    for (i, &id) in ids.iter().enumerate() {
        let b = store.balance(id).map_err(|e| format!("balance: {e}"))?;
        if !b.reserved.is_zero() || b.available != b.balance {
            problems.push(format!(
                "account {i}: still reserved after closing all: {b:?}"
            ));
        }
    }

    let outcomes = shared.outcomes.lock().expect("outcomes");
    let total: u64 = outcomes
        .iter()
        .filter(|(k, _)| !k.starts_with("sweeper"))
        .map(|(_, v)| v)
        .sum();
    let summary: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut expired = 0;
    for &id in &ids {
        expired += journal_sums(db, id)?.expired;
    }
    let captured: i64 = shared
        .captured
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum();
    eprintln!(
        "[hammer] {}::{label}: {THREADS} threads, {accounts} account(s), {total} ops in {:.2}s \
         ({processes} store(s), seed {seed}, clock +{} min, slowest op {:.2}s); captured {} credits, expired {}; {}",
        backend.name(),
        hammer_time.as_secs_f64(),
        (db.now().micros() - started_clock(db, &ids)?) / MINUTE,
        shared.slowest.load(Ordering::Relaxed) as f64 / 1e6,
        units(captured),
        units(expired),
        summary.join(" ")
    );
    if problems.is_empty() {
        Ok(())
    } else {
        let shown = problems.len().min(20);
        Err(format!(
            "{label}: {} problem(s){}:\n{}",
            problems.len(),
            if shown < problems.len() {
                ", the first 20"
            } else {
                ""
            },
            problems[..shown].join("\n")
        ))
    }
}

/// When the phase's accounts were created (to report how far the clock moved).
fn started_clock(db: &TestDb, ids: &[AccountId]) -> Result<i64, String> {
    let account = db
        .store
        .account(ids[0])
        .map_err(|e| format!("account: {e}"))?;
    Ok(account.created_at.micros())
}

pub fn concurrency_hammer(backend: &Backend) -> Result<(), Failed> {
    let options = DbOptions {
        pool_size: backend.is_postgres().then_some(16),
        ..DbOptions::default()
    };
    let db = TestDb::new(backend, options)?;
    let seed = seed();
    phase(&db, backend, "hot", 1, 200, seed, 1)?;
    phase(&db, backend, "spread", 8, 40, seed.rotate_left(17), 1)?;
    // Two engines on one database: each must notice what the other changed.
    phase(&db, backend, "two-engines", 3, 80, seed.rotate_left(29), 2)?;
    Ok(())
}

/// Runs `f(i)` on `n` threads released together, so their calls queue for the ledger
/// engine at the same moment; returns the results in thread order.
fn burst<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("burst thread"))
            .collect()
    })
}

/// One round of `batch_neighbours`; returns how many operations shared a transaction.
fn neighbours_round(db: &TestDb, service_id: ServiceId, round: usize) -> Result<u64, String> {
    let store = &db.store;
    let account = db.account(service_id, &format!("neighbours-{round}"))?;
    store
        .grant(&GrantRequest {
            account_id: account.id,
            amount: credits(100),
            expires_at: NEVER,
            origin: EntryKind::Grant,
            reference: None,
            description: None,
        })
        .map_err(|e| format!("grant: {e}"))?;
    let before = store.engine_stats();

    // 32 authorizes of 10 on 100 credits, next to captures of unknown transactions.
    let answers = burst(36, |i| {
        if i < 32 {
            store
                .authorize(account.id, credits(10), 1, None)
                .map(|(_, token, _)| Some(token))
        } else {
            store
                .capture(&format!("no-such-transaction-{i}"), None, Some(service_id))
                .map(|_| None)
        }
    });
    let mut tokens = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        match (i < 32, answer) {
            (true, Ok(Some(token))) => tokens.push(token),
            (true, Err(LedgerError::InsufficientCredit { .. })) => {}
            (false, Err(LedgerError::UnknownHold)) => {}
            (_, other) => return Err(format!("call {i}: unexpected {other:?}")),
        }
    }
    if tokens.len() != 10 {
        return Err(format!(
            "{} authorizes of 10 passed on 100 credits",
            tokens.len()
        ));
    }

    // Five exact captures next to five that ask for more than is left.
    let captures = burst(10, |i| {
        let amount = if i % 2 == 0 { 10 } else { 110 };
        store.capture(&tokens[i], Some(credits(amount)), Some(service_id))
    });
    for (i, answer) in captures.iter().enumerate() {
        match (i % 2 == 0, answer) {
            (true, Ok(outcome)) if outcome.hold.captured == Some(credits(10)) => {}
            (false, Err(LedgerError::InsufficientCredit { .. })) => {}
            (_, other) => return Err(format!("capture {i}: unexpected {other:?}")),
        }
    }
    let b = store.balance(account.id).map_err(|e| e.to_string())?;
    if (b.balance, b.reserved) != (credits(50), credits(50)) {
        return Err(format!(
            "after captures: {b:?}, want balance 50 reserved 50"
        ));
    }
    let cancels = burst(5, |i| store.cancel(&tokens[2 * i + 1], Some(service_id)));
    if let Some(e) = cancels.iter().find_map(|r| r.as_ref().err()) {
        return Err(format!("cancel: {e}"));
    }
    let b = store.balance(account.id).map_err(|e| e.to_string())?;
    if (b.balance, b.reserved) != (credits(50), credits(0)) {
        return Err(format!("after cancels: {b:?}, want balance 50 reserved 0"));
    }
    audit_clean(store, account.id)?;
    let after = store.engine_stats();
    Ok((after.operations - before.operations) - (after.batches - before.batches))
}

/// Operations that queue together commit in one transaction, each with its own outcome:
/// authorizes refused for want of credit, captures of unknown transactions and captures
/// of more than is left fail alone; their neighbours commit.
pub fn batch_neighbours(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let service = db.service("neighbours")?;
    let mut shared = 0;
    // Threads released together nearly always queue together; a round where the
    // scheduler ran them one by one proves nothing, so try a few.
    for round in 0..10 {
        shared += neighbours_round(&db, service.id, round)?;
        if shared > 0 {
            break;
        }
    }
    let stats = db.store.engine_stats();
    eprintln!("[neighbours] {}: {stats:?}", backend.name());
    if shared == 0 {
        return Err(
            "no two operations ever shared a transaction: the engine does not batch".into(),
        );
    }
    Ok(())
}

/// SQLite: while writes never pause, the background checkpoints still copy the WAL to its
/// end (so SQLite starts it again from its head instead of letting it grow until every
/// commit runs a checkpoint of its own), and every charge stays exact.
pub fn wal_copied_to_end(backend: &Backend) -> Result<(), Failed> {
    const WRITERS: usize = 8;
    const CHARGES: usize = 600;
    /// Pages: SQLite's own checkpoints, which would start the WAL again, come too late
    /// to hide a WAL that is never copied to its end (4 KiB pages: 400 MiB).
    const AUTOCHECKPOINT: u32 = 100_000;
    /// What the WAL file may reach: a round's writes, with room to spare, and well under
    /// the ~130 MiB these writes leave when no round reaches the end.
    const WAL_BOUND: u64 = 80 << 20;
    let options = DbOptions {
        wal_autocheckpoint: Some(AUTOCHECKPOINT),
        ..DbOptions::default()
    };
    let db = TestDb::new(backend, options)?;
    let service = db.service("wal")?;
    let mut accounts = Vec::new();
    for i in 0..WRITERS {
        let account = db.account(service.id, &format!("wal-{i}"))?;
        db.store.grant(&GrantRequest {
            account_id: account.id,
            amount: credits(CHARGES as i64),
            expires_at: NEVER,
            origin: EntryKind::Grant,
            reference: None,
            description: None,
        })?;
        accounts.push(account.id);
    }
    let store = &db.store;
    let charged = burst(WRITERS, |i| -> Result<(), String> {
        for n in 0..CHARGES {
            let (_, token, _) = store
                .authorize(accounts[i], credits(1), 1, None)
                .map_err(|e| format!("writer {i}, authorize {n}: {e}"))?;
            store
                .capture(&token, None, Some(service.id))
                .map_err(|e| format!("writer {i}, capture {n}: {e}"))?;
        }
        Ok(())
    });
    for result in charged {
        result?;
    }
    for &account in &accounts {
        let b = store.balance(account)?;
        if b.balance != credits(0) || b.reserved != credits(0) {
            return Err(format!("account {account} after every charge: {b:?}").into());
        }
        audit_clean(store, account)?;
    }
    let stats = store.engine_stats();
    let wal = db
        .sqlite_path()
        .map(|path| std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len()))
        .unwrap_or(0);
    eprintln!("[wal] {stats:?}, WAL file {wal} bytes");
    // 9,600 operations ask for 9 rounds; the first ends long before the writers do.
    if stats.checkpoints < 2 {
        return Err(format!("{} checkpoint(s) ran during the writes", stats.checkpoints).into());
    }
    if wal > WAL_BOUND {
        return Err(format!(
            "the WAL file grew to {wal} bytes: checkpoints did not start it again"
        )
        .into());
    }
    if stats.checkpoints_short > 0 {
        return Err(format!(
            "{} of {} checkpoints stopped short of the WAL's end",
            stats.checkpoints_short, stats.checkpoints
        )
        .into());
    }
    Ok(())
}
