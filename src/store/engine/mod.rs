//! The ledger engine: authorize, capture and cancel from every request thread queue here
//! and one thread runs whatever is waiting as one database transaction (group commit).
//!
//! A batch makes sure memory still matches its accounts (their `lock_version`), runs each
//! operation of `ledger::ops` against memory — a refused operation is undone alone, its
//! neighbours go on — writes what changed and commits; only then does each caller get its
//! answer. The batch size follows the load: one operation when calls come one at a time,
//! as many as were waiting under load, so a commit (one disk flush) serves many.
//!
//! SQLite locks the database (`BEGIN IMMEDIATE`), checks versions, reloads what moved,
//! then writes row by row. PostgreSQL first tries one round trip: `iap_engine_write`
//! locks the accounts in id order, checks the versions memory relied on and writes every
//! table, or fails with nothing written if an account moved; the batch then runs again in
//! a transaction that locks and reloads first.
//! Grants, settlement and settings still run in their own transactions; they bump the
//! account's `lock_version`, which is how the engine learns of them.
//!
//! Every call has a deadline (`database.call_deadline_ms`). A caller still waiting in the
//! queue at its deadline gives up and is answered "unavailable"; the batch, once it holds
//! its locks and before it runs the operations, takes each call it will write (a compare
//! and swap on the call's [`Ticket`], one clock read per batch) and refuses those whose
//! deadline has passed or whose caller gave up. A taken call's caller waits for the
//! batch's outcome, so no caller hears an error for an operation that was applied. An
//! unavailable or locked database fails a whole batch at once.

mod checkpoint;
#[cfg(test)]
mod equivalence;
mod overlay;
mod sql;
mod state;

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use diesel::Connection;

use self::overlay::{Overlay, WriteSet};
use self::sql::{EngineSql, Flush};
use self::state::Cache;
use super::connection::Pool;
use crate::ledger::ops::{self, CloseOutcome};
use crate::ledger::{
    AccountId, Balance, Credits, Hold, HoldId, LedgerError, ServiceId, StorageError, Timestamp,
};
use crate::telemetry::METRICS;

/// Most operations in one transaction: bounds a batch's statements and its latency.
const MAX_BATCH: usize = 256;
/// Accounts kept in memory; the least recently used beyond are dropped.
const CACHE_ACCOUNTS: usize = 20_000;
/// SQLite: operations between two background checkpoints (about 6 WAL pages each over
/// random accounts, well under `sqlite_wal_autocheckpoint`, which stays as a safety net).
const CHECKPOINT_EVERY_OPS: usize = 1_000;
/// Hold ids reserved at a time on PostgreSQL (one round trip per that many authorizes).
const HOLD_ID_BLOCK: usize = 256;

pub(crate) enum Op {
    Authorize {
        account_id: AccountId,
        amount: Credits,
        expires_at: Timestamp,
        token_hash: String,
        description: Option<String>,
    },
    Capture {
        token_hash: String,
        amount: Option<Credits>,
        service_id: Option<ServiceId>,
    },
    Cancel {
        token_hash: String,
        service_id: Option<ServiceId>,
    },
}

pub(crate) enum Output {
    Authorized(Hold, Balance),
    Closed(CloseOutcome),
}

type Reply = Result<Output, LedgerError>;

/// Where a job's answer goes: a thread blocked on it, or an async task.
enum ReplyTo {
    Blocking(SyncSender<Reply>),
    Async(tokio::sync::oneshot::Sender<Reply>),
}

impl ReplyTo {
    fn send(self, reply: Reply) {
        // The caller may have given up waiting: nothing to tell.
        match self {
            ReplyTo::Blocking(caller) => {
                let _ = caller.send(reply);
            }
            ReplyTo::Async(caller) => {
                let _ = caller.send(reply);
            }
        }
    }
}

/// Who decides a queued call's fate: its caller, giving up at the deadline, or the
/// engine, taking it into a batch it is about to write. Whoever comes first wins.
struct Ticket(AtomicU8);

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Ticket {
    fn new() -> Arc<Ticket> {
        Arc::new(Ticket(AtomicU8::new(WAITING)))
    }

    /// The caller's side: true when the engine had not taken the call, which it now never
    /// will; false when it has, and its outcome is on the way.
    fn give_up(&self) -> bool {
        matches!(
            self.0
                .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire),
            Ok(_) | Err(ABANDONED)
        )
    }

    /// The engine's side, just before a batch runs its operations: true when the call may
    /// be written. A call past its deadline is refused, even one taken by an earlier try
    /// of the same batch (its caller is still waiting for this answer).
    fn take(&self, deadline: Instant, now: Instant) -> bool {
        if now >= deadline {
            self.0.store(ABANDONED, Ordering::Release);
            return false;
        }
        matches!(
            self.0
                .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire),
            Ok(_) | Err(TAKEN)
        )
    }

    fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDONED
    }
}

struct Job {
    op: Op,
    now: Timestamp,
    deadline: Instant,
    ticket: Arc<Ticket>,
    reply: ReplyTo,
}

/// How the engine has batched so far (this store only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Transactions the engine committed or tried.
    pub batches: u64,
    /// Operations they carried.
    pub operations: u64,
    /// The most operations one transaction carried.
    pub largest: u64,
    /// SQLite: background checkpoints run.
    pub checkpoints: u64,
    /// SQLite: those that could not copy the WAL to its end (a reader kept old pages).
    pub checkpoints_short: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    operations: AtomicU64,
    largest: AtomicU64,
    checkpoints: AtomicU64,
    checkpoints_short: AtomicU64,
    /// The last batch failed for want of the database (what `/health` reports).
    failing: AtomicBool,
    /// When it did, in milliseconds since the engine started.
    failed_at_ms: AtomicU64,
}

/// The callers' side: cheap to clone, one per [`super::Store`] clone.
#[derive(Clone)]
pub(crate) struct Engine {
    queue: Sender<Job>,
    counters: Arc<Counters>,
    /// `database.call_deadline_ms`.
    deadline: Duration,
    started: Instant,
}

/// How long `/health` keeps reporting a failed batch when no batch has run since: the
/// sidecar is taken out of rotation, so no traffic may come to prove the database back.
const FAILURE_REPORTED_FOR: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts the engine thread; it ends when the last handle is dropped.
    pub fn start(pool: Pool, deadline: Duration) -> Result<Engine, LedgerError> {
        let (queue, jobs) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let worker = Worker::new(pool, Arc::clone(&counters), started);
        std::thread::Builder::new()
            .name("ledger-engine".into())
            .spawn(move || worker.run(&jobs))
            .map_err(StorageError::failed)?;
        Ok(Engine {
            queue,
            counters,
            deadline: deadline.max(Duration::from_millis(1)),
            started,
        })
    }

    /// Whether the engine's writes fail now: its last batch could not reach or write the
    /// database, and that was less than [`FAILURE_REPORTED_FOR`] ago.
    pub fn failing(&self) -> bool {
        if !self.counters.failing.load(Ordering::Acquire) {
            return false;
        }
        let since_start = self.started.elapsed().as_millis() as u64;
        let failed_at = self.counters.failed_at_ms.load(Ordering::Acquire);
        since_start.saturating_sub(failed_at) < FAILURE_REPORTED_FOR.as_millis() as u64
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            operations: self.counters.operations.load(Ordering::Relaxed),
            largest: self.counters.largest.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
            checkpoints_short: self.counters.checkpoints_short.load(Ordering::Relaxed),
        }
    }

    /// Runs `op` in the next batch and waits for its committed outcome, or for the
    /// deadline if the engine has not taken it by then.
    pub fn run(&self, op: Op, now: Timestamp) -> Reply {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let ticket = self.submit(op, now, ReplyTo::Blocking(reply))?;
        match answer.recv_timeout(self.deadline) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) if ticket.give_up() => Err(too_late()),
            // Taken: the batch is writing it; its outcome, whatever it is, is the answer.
            Err(RecvTimeoutError::Timeout) => answer.recv().map_err(|_| stopped())?,
            Err(RecvTimeoutError::Disconnected) => Err(stopped()),
        }
    }

    /// [`Engine::run`] for async callers: no thread waits for the batch.
    pub async fn run_async(&self, op: Op, now: Timestamp) -> Reply {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let ticket = self.submit(op, now, ReplyTo::Async(reply))?;
        match tokio::time::timeout(self.deadline, &mut answer).await {
            Ok(reply) => reply.map_err(|_| stopped())?,
            Err(_) if ticket.give_up() => Err(too_late()),
            Err(_) => answer.await.map_err(|_| stopped())?,
        }
    }

    fn submit(&self, op: Op, now: Timestamp, reply: ReplyTo) -> Result<Arc<Ticket>, LedgerError> {
        let ticket = Ticket::new();
        self.queue
            .send(Job {
                op,
                now,
                deadline: Instant::now() + self.deadline,
                ticket: Arc::clone(&ticket),
                reply,
            })
            .map_err(|_| stopped())?;
        Ok(ticket)
    }
}

fn stopped() -> LedgerError {
    StorageError::unavailable("the ledger engine has stopped").into()
}

/// The answer to a call the database could not take before its deadline.
fn too_late() -> LedgerError {
    StorageError::unavailable("the database did not take the call before its deadline").into()
}

/// The same failure for every operation of a batch that could not commit (each caller
/// gets its own copy of the message; the cause itself is logged once).
fn shared_failure(e: &LedgerError) -> LedgerError {
    // The cause's own words: the copy gets its variant's prefix again, once.
    let text = match e {
        LedgerError::Storage(s) => s.cause().to_string(),
        other => other.to_string(),
    };
    if e.is_unavailable() {
        StorageError::unavailable(text).into()
    } else {
        StorageError::failed(text).into()
    }
}

/// How a batch makes sure memory matches the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Locking {
    /// Lock the accounts first, reload those that moved (SQLite, and PostgreSQL's retry).
    Locked,
    /// No locks: the single write statement fails if any account moved (PostgreSQL).
    Optimistic,
}

struct Worker {
    pool: Pool,
    counters: Arc<Counters>,
    started: Instant,
    cache: Cache,
    /// PostgreSQL hold ids reserved and not yet used.
    spare_ids: Vec<HoldId>,
    /// SQLite: operations committed since the last background checkpoint was asked for.
    since_checkpoint: usize,
}

impl Worker {
    fn new(pool: Pool, counters: Arc<Counters>, started: Instant) -> Worker {
        Worker {
            pool,
            counters,
            started,
            cache: Cache::new(CACHE_ACCOUNTS),
            spare_ids: Vec::new(),
            since_checkpoint: 0,
        }
    }

    fn run(mut self, queue: &Receiver<Job>) {
        // Waking each caller costs a system call; a second thread does it, so the engine
        // goes on with the next batch at once (it is the one thread every write waits for).
        let (answers, to_send) = std::sync::mpsc::channel::<Vec<(ReplyTo, Reply)>>();
        let replier = std::thread::Builder::new()
            .name("ledger-replies".into())
            .spawn(move || {
                while let Ok(batch) = to_send.recv() {
                    for (caller, reply) in batch {
                        caller.send(reply);
                    }
                }
            });
        let answer = |batch: Vec<(ReplyTo, Reply)>| match &replier {
            Ok(_) => {
                if let Err(unsent) = answers.send(batch) {
                    for (caller, reply) in unsent.0 {
                        caller.send(reply);
                    }
                }
            }
            Err(_) => {
                for (caller, reply) in batch {
                    caller.send(reply);
                }
            }
        };
        // SQLite: a second thread copies the WAL back into the database file while the
        // engine goes on committing. Left to SQLite, the copy runs inside a COMMIT and
        // holds back that batch's answers and the next batch for its whole duration.
        let checkpointer = match &self.pool {
            Pool::Sqlite(pool, writer) => {
                checkpoint::start(pool.clone(), Arc::clone(writer), Arc::clone(&self.counters))
            }
            Pool::Pg(_) => None,
        };
        while let Ok(first) = queue.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            // Calls whose callers gave up while the database was away cost nothing more.
            if jobs.iter().any(|j| j.ticket.abandoned()) {
                let (gone, live): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| j.ticket.abandoned());
                answer(
                    gone.into_iter()
                        .map(|j| (j.reply, Err(too_late())))
                        .collect(),
                );
                jobs = live;
                if jobs.is_empty() {
                    continue;
                }
            }
            METRICS.ledger_batch(jobs.len());
            let size = jobs.len() as u64;
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.operations.fetch_add(size, Ordering::Relaxed);
            self.counters.largest.fetch_max(size, Ordering::Relaxed);
            let outcome = self.commit(&jobs);
            self.note_outcome(&outcome);
            match outcome {
                Ok(replies) => {
                    let done = replies.len();
                    answer(jobs.into_iter().map(|j| j.reply).zip(replies).collect());
                    self.since_checkpoint += done;
                    // One still running takes these pages too: ask again after more work.
                    if self.since_checkpoint >= CHECKPOINT_EVERY_OPS
                        && let Some(checkpointer) = &checkpointer
                        && checkpointer.try_send(()).is_ok()
                    {
                        self.since_checkpoint = 0;
                    }
                }
                Err(e) if jobs.len() > 1 && !e.is_unavailable() => {
                    // One operation may be what broke the batch: run each alone, so it
                    // cannot fail its neighbours. (Not when the database itself is away or
                    // locked: each would wait for it again while new calls queue behind.)
                    tracing::warn!(error = %e, size = jobs.len(), "ledger batch failed; retrying its operations one by one");
                    // The database going away meanwhile fails the rest at once.
                    let mut away: Option<LedgerError> = None;
                    for job in jobs {
                        let reply = match &away {
                            Some(e) => Err(shared_failure(e)),
                            None => {
                                let outcome = self.commit(std::slice::from_ref(&job));
                                self.note_outcome(&outcome);
                                match outcome {
                                    Ok(mut replies) => replies.pop().unwrap_or_else(|| {
                                        Err(StorageError::failed("no outcome").into())
                                    }),
                                    Err(e) if e.is_unavailable() => {
                                        away = Some(shared_failure(&e));
                                        Err(e)
                                    }
                                    Err(e) => Err(e),
                                }
                            }
                        };
                        answer(vec![(job.reply, reply)]);
                    }
                }
                Err(e) => {
                    answer(
                        jobs.into_iter()
                            .map(|j| (j.reply, Err(shared_failure(&e))))
                            .collect(),
                    );
                }
            }
        }
    }

    /// Remembers for `/health` whether the database took the last batch.
    fn note_outcome(&self, outcome: &Result<Vec<Reply>, LedgerError>) {
        match outcome {
            Ok(_) => self.counters.failing.store(false, Ordering::Release),
            Err(LedgerError::Storage(_)) => {
                let at = self.started.elapsed().as_millis() as u64;
                self.counters.failed_at_ms.store(at, Ordering::Release);
                self.counters.failing.store(true, Ordering::Release);
            }
            Err(_) => {}
        }
    }

    /// One transaction for `jobs`; on failure memory is dropped for every account it
    /// touched, since it may be ahead of the database.
    fn commit(&mut self, jobs: &[Job]) -> Result<Vec<Reply>, LedgerError> {
        let mut touched = BTreeSet::new();
        // No connection is worth waiting for past the last caller's deadline.
        let latest = jobs.iter().map(|j| j.deadline).max();
        let wait = latest.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let pool = self.pool.clone();
            match &pool {
                Pool::Sqlite(p, writer) => {
                    let mut pooled = super::connection::checkout(p, wait)?;
                    let conn: &mut diesel::SqliteConnection = &mut pooled;
                    let _writer = writer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    conn.immediate_transaction(|c| {
                        self.batch(c, jobs, &mut touched, Locking::Locked)
                    })
                }
                Pool::Pg(p) => {
                    let mut pooled = super::connection::checkout(p, wait)?;
                    let conn: &mut diesel::PgConnection = &mut pooled;
                    // First without locks, in one statement that checks the versions it
                    // relied on; if an account moved, reload and run again under locks.
                    match self.batch(conn, jobs, &mut touched, Locking::Optimistic) {
                        Ok(replies) => Ok(replies),
                        Err(e) => {
                            tracing::debug!(error = %e, "optimistic ledger batch refused; retrying under locks");
                            for id in std::mem::take(&mut touched) {
                                self.cache.remove(id);
                            }
                            conn.transaction(|c| self.batch(c, jobs, &mut touched, Locking::Locked))
                        }
                    }
                }
            }
        }));
        let outcome =
            outcome.unwrap_or_else(|_| Err(StorageError::failed("ledger batch panicked").into()));
        if outcome.is_err() {
            for id in &touched {
                self.cache.remove(*id);
            }
            self.spare_ids.clear();
        }
        self.cache.evict();
        outcome
    }

    fn batch<C: EngineSql>(
        &mut self,
        c: &mut C,
        jobs: &[Job],
        touched: &mut BTreeSet<AccountId>,
        locking: Locking,
    ) -> Result<Vec<Reply>, LedgerError> {
        self.cache.next_tick();
        let mut replies: Vec<Option<Reply>> = jobs.iter().map(|_| None).collect();

        // Which accounts the batch serves: a capture or cancel names its hold only.
        for (job, reply) in jobs.iter().zip(replies.iter_mut()) {
            match &job.op {
                Op::Authorize { account_id, .. } => {
                    touched.insert(*account_id);
                }
                Op::Capture { token_hash, .. } | Op::Cancel { token_hash, .. } => {
                    if let Some((account_id, _)) = self.cache.open_hold_by_token(token_hash) {
                        touched.insert(account_id);
                    } else {
                        match c.find_hold(token_hash)? {
                            Some(hold) => {
                                touched.insert(hold.account_id);
                            }
                            None => *reply = Some(Err(LedgerError::UnknownHold)),
                        }
                    }
                }
            }
        }

        let ids: Vec<AccountId> = touched.iter().copied().collect();
        match locking {
            Locking::Locked => {
                // Lock them, and reload what changed since memory last saw it.
                let versions = c.lock_versions(&ids)?;
                let found: BTreeSet<AccountId> = versions.iter().map(|(id, _)| *id).collect();
                for id in ids.iter().filter(|id| !found.contains(id)) {
                    self.cache.remove(*id);
                }
                for (id, version) in versions {
                    if self.cache.version(id) != Some(version) {
                        self.reload(c, id)?;
                    }
                }
            }
            Locking::Optimistic => {
                // Trust memory; load what it lacks. The write checks every version.
                for &id in &ids {
                    if self.cache.version(id).is_none() {
                        self.reload(c, id)?;
                    }
                }
            }
        }
        let expected: Vec<(AccountId, i64)> = ids
            .iter()
            .filter_map(|&id| Some((id, self.cache.version(id)?)))
            .collect();

        // The last moment to refuse a call: from here on, what runs is written and each
        // caller taken waits for this batch's outcome.
        let now = Instant::now();
        for (job, reply) in jobs.iter().zip(replies.iter_mut()) {
            if reply.is_none() && !job.ticket.take(job.deadline, now) {
                *reply = Some(Err(too_late()));
            }
        }

        let authorizes = jobs
            .iter()
            .zip(&replies)
            .filter(|(j, r)| r.is_none() && matches!(j.op, Op::Authorize { .. }))
            .count();
        let mut hold_ids = self.hold_ids(c, authorizes)?.into_iter();

        let mut writes = WriteSet::default();
        {
            let mut repo = Overlay::new(c, &mut self.cache, &mut writes, &mut hold_ids);
            for (job, reply) in jobs.iter().zip(replies.iter_mut()) {
                if reply.is_some() {
                    continue;
                }
                repo.begin();
                let outcome = run_op(&mut repo, job);
                if outcome.is_err() {
                    repo.rollback();
                }
                *reply = Some(outcome);
            }
        }
        // Reserved ids left over stay for the next batch (PostgreSQL only).
        if matches!(self.pool, Pool::Pg(_)) {
            let unused: Vec<HoldId> = hold_ids.collect();
            self.spare_ids.splice(0..0, unused);
        }

        let flush = Flush::new(writes, &self.cache, expected);
        c.write(&flush)?;
        for (account, version) in &flush.accounts {
            if let Some(state) = self.cache.get_mut(account.id) {
                state.version = *version;
                state.prune_lots();
            }
        }
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StorageError::failed("no outcome").into())))
            .collect())
    }

    fn reload<C: EngineSql>(&mut self, c: &mut C, id: AccountId) -> Result<(), LedgerError> {
        match c.load_state(id)? {
            Some(state) => self.cache.insert(state),
            None => self.cache.remove(id),
        }
        Ok(())
    }

    fn hold_ids<C: EngineSql>(&mut self, c: &mut C, n: usize) -> Result<Vec<HoldId>, LedgerError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        match self.pool {
            Pool::Pg(_) => {
                if self.spare_ids.len() < n {
                    let more = c.reserve_hold_ids(n.max(HOLD_ID_BLOCK))?;
                    self.spare_ids.extend(more);
                }
                // Oldest first, so ids keep growing.
                Ok(self.spare_ids.drain(..n).collect())
            }
            Pool::Sqlite(..) => Ok(c.reserve_hold_ids(n)?),
        }
    }
}

/// One job's operation on `repo`: the overlay in a batch, or SQL in the overlay ≡ SQL test.
fn run_op<R: crate::ledger::repo::HoldRepo>(repo: &mut R, job: &Job) -> Reply {
    let now = job.now;
    match &job.op {
        Op::Authorize {
            account_id,
            amount,
            expires_at,
            token_hash,
            description,
        } => ops::authorize(
            repo,
            *account_id,
            *amount,
            *expires_at,
            token_hash,
            description.as_deref(),
            now,
        )
        .map(|(hold, balance)| Output::Authorized(hold, balance)),
        Op::Capture {
            token_hash,
            amount,
            service_id,
        } => ops::capture(repo, token_hash, *amount, *service_id, now).map(Output::Closed),
        Op::Cancel {
            token_hash,
            service_id,
        } => ops::cancel(repo, token_hash, *service_id, now).map(Output::Closed),
    }
}
