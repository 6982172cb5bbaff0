//! The overlay ≡ SQL property test. The engine runs `ledger::ops` against its in-memory
//! overlay, the rest of the sidecar runs them against SQL; both implement the same
//! queries (lot and hold order, what settlement sees), so nothing but this test keeps
//! them equal. Random operation sequences go to two databases of one backend: (a) each
//! operation in its own transaction on the SQL repository, (b) the same operations in
//! batches through the engine's worker, as the engine runs them. Every answer, the
//! balance of every account and every row of the accounts, lots, holds, allocations,
//! journal and alert outbox must be the same after each step.
//!
//! Seeds: a fixed set; `IAP_SIDECAR_OVERLAY_SEEDS` (comma-separated) runs those instead,
//! to replay a failure; `IAP_SIDECAR_OVERLAY_RANDOM_SEEDS=N` adds N more drawn from the
//! clock (printed). A failure names its seed and step. PostgreSQL runs with `IAP_SIDECAR_TEST_PG_URL` (a role with
//! CREATEDB), and fails when it is missing under `CI=true`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{Counters, Job, Op, Output, Reply, ReplyTo, Ticket, Worker, run_op};
use crate::config::{DatabaseSettings, Secret};
use crate::ledger::ops::{self, Grant};
use crate::ledger::repo::LedgerRepo;
use crate::ledger::time::NEVER;
use crate::ledger::token::random_hex;
use crate::ledger::{AccountId, Credits, EntryKind, Hold, HoldId, LotId, ServiceId, Timestamp};
use crate::store::accounts::update_account;
use crate::store::connection::Pool;
use crate::store::schema::{
    accounts, alert_outbox, hold_allocations, holds, journal, lots, services,
};

const FIXED_SEEDS: &[u64] = &[1, 2, 3, 42, 0x5eed, 0xdead_beef, 20_261_130, 7_777_777];
const STEPS: usize = 80;
const ACCOUNTS: usize = 3;
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;

/// SplitMix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.below((high - low + 1) as u64) as i64)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What both sides need from a connection: the SQL ledger plus the test's own reads and
/// writes, compiled once per backend like the store.
trait TestConn: LedgerRepo + Connection + Sized {
    fn add_service(&mut self, name: &str) -> QueryResult<ServiceId>;
    fn add_account(
        &mut self,
        service_id: ServiceId,
        token: &str,
        threshold: i64,
    ) -> QueryResult<AccountId>;
    fn set_disabled(&mut self, id: AccountId, disabled: bool) -> QueryResult<()>;
    /// Every row of `ids`' accounts, as text, hold ids replaced by their tokens (the engine
    /// reserves hold ids ahead, so they may differ where nothing else does).
    fn snapshot(
        &mut self,
        ids: &[AccountId],
    ) -> QueryResult<(Vec<String>, HashMap<HoldId, String>)>;
}

macro_rules! impl_test_conn {
    ($conn:ty) => {
        impl TestConn for $conn {
            fn add_service(&mut self, name: &str) -> QueryResult<ServiceId> {
                diesel::insert_into(services::table)
                    .values((
                        services::technical_name.eq(name),
                        services::label.eq(name),
                        services::unit_name.eq("credits"),
                        services::integer_balance.eq(false),
                        services::key_hash.eq(name),
                        services::trial_credits.eq(0),
                        services::trial_days.eq(0),
                        services::created_at.eq(START),
                        services::open_to_all.eq(true),
                    ))
                    .returning(services::id)
                    .get_result(self)
            }

            fn add_account(
                &mut self,
                service_id: ServiceId,
                token: &str,
                threshold: i64,
            ) -> QueryResult<AccountId> {
                diesel::insert_into(accounts::table)
                    .values((
                        accounts::service_id.eq(service_id),
                        accounts::token_hash.eq(token),
                        accounts::token_hint.eq("…"),
                        accounts::state.eq("registered"),
                        accounts::disabled.eq(false),
                        accounts::created_at.eq(START),
                        accounts::updated_at.eq(START),
                        accounts::warning_threshold.eq(threshold),
                        accounts::warn_me.eq(true),
                        accounts::warning_emails
                            .eq(r#"[{"email":"owner@example.com","lang_code":"fr_FR"}]"#),
                        accounts::alert_armed.eq(true),
                    ))
                    .returning(accounts::id)
                    .get_result(self)
            }

            fn set_disabled(&mut self, id: AccountId, disabled: bool) -> QueryResult<()> {
                update_account(accounts::table.find(id), accounts::disabled.eq(disabled))
                    .execute(self)?;
                Ok(())
            }

            fn snapshot(
                &mut self,
                ids: &[AccountId],
            ) -> QueryResult<(Vec<String>, HashMap<HoldId, String>)> {
                let mut out = Vec::new();
                let rows: Vec<(AccountId, i64, i64, i64, i64, bool, bool)> = accounts::table
                    .filter(accounts::id.eq_any(ids))
                    .order(accounts::id)
                    .select((
                        accounts::id,
                        accounts::balance,
                        accounts::reserved,
                        accounts::last_seq,
                        accounts::updated_at,
                        accounts::alert_armed,
                        accounts::disabled,
                    ))
                    .load(self)?;
                for r in rows {
                    out.push(format!(
                        "account {}: balance {} reserved {} last_seq {} updated_at {} \
                         armed {} disabled {}",
                        r.0, r.1, r.2, r.3, r.4, r.5, r.6
                    ));
                }
                let rows: Vec<(LotId, AccountId, i64, i64, i64, String)> = lots::table
                    .filter(lots::account_id.eq_any(ids))
                    .order(lots::id)
                    .select((
                        lots::id,
                        lots::account_id,
                        lots::amount,
                        lots::remaining,
                        lots::expires_at,
                        lots::origin,
                    ))
                    .load(self)?;
                for r in rows {
                    out.push(format!(
                        "lot {} of {}: amount {} remaining {} expires {} origin {}",
                        r.0, r.1, r.2, r.3, r.4, r.5
                    ));
                }
                type HoldTuple = (
                    HoldId,
                    AccountId,
                    String,
                    i64,
                    String,
                    Option<i64>,
                    Option<String>,
                    i64,
                    i64,
                    Option<i64>,
                );
                let rows: Vec<HoldTuple> = holds::table
                    .filter(holds::account_id.eq_any(ids))
                    .order(holds::token_hash)
                    .select((
                        holds::id,
                        holds::account_id,
                        holds::token_hash,
                        holds::amount,
                        holds::status,
                        holds::captured,
                        holds::description,
                        holds::created_at,
                        holds::expires_at,
                        holds::closed_at,
                    ))
                    .load(self)?;
                let tokens: HashMap<HoldId, String> =
                    rows.iter().map(|r| (r.0, r.2.clone())).collect();
                for r in rows {
                    out.push(format!(
                        "hold {} of {}: amount {} {} captured {:?} {:?} created {} \
                         expires {} closed {:?}",
                        r.2, r.1, r.3, r.4, r.5, r.6, r.7, r.8, r.9
                    ));
                }
                let hold_ids: Vec<HoldId> = tokens.keys().copied().collect();
                let rows: Vec<(HoldId, LotId, i64)> = hold_allocations::table
                    .filter(hold_allocations::hold_id.eq_any(&hold_ids))
                    .select((
                        hold_allocations::hold_id,
                        hold_allocations::lot_id,
                        hold_allocations::amount,
                    ))
                    .load(self)?;
                let mut allocations: Vec<String> = rows
                    .into_iter()
                    .map(|(h, l, a)| format!("allocation {} on lot {l}: {a}", token(&tokens, h)))
                    .collect();
                allocations.sort();
                out.extend(allocations);
                type EntryTuple = (
                    AccountId,
                    i64,
                    String,
                    i64,
                    i64,
                    Option<HoldId>,
                    Option<LotId>,
                    Option<String>,
                    i64,
                    i64,
                );
                let rows: Vec<EntryTuple> = journal::table
                    .filter(journal::account_id.eq_any(ids))
                    .order((journal::account_id, journal::seq))
                    .select((
                        journal::account_id,
                        journal::seq,
                        journal::kind,
                        journal::amount,
                        journal::balance_after,
                        journal::hold_id,
                        journal::lot_id,
                        journal::description,
                        journal::effective_at,
                        journal::recorded_at,
                    ))
                    .load(self)?;
                for r in rows {
                    out.push(format!(
                        "journal {}#{}: {} {} -> {} hold {} lot {:?} {:?} effective {} \
                         recorded {}",
                        r.0,
                        r.1,
                        r.2,
                        r.3,
                        r.4,
                        r.5.map_or("-".to_owned(), |h| token(&tokens, h)),
                        r.6,
                        r.7,
                        r.8,
                        r.9
                    ));
                }
                let rows: Vec<(AccountId, String, i64, i64, i64)> = alert_outbox::table
                    .filter(alert_outbox::account_id.eq_any(ids))
                    .order(alert_outbox::id)
                    .select((
                        alert_outbox::account_id,
                        alert_outbox::recipient,
                        alert_outbox::available,
                        alert_outbox::threshold,
                        alert_outbox::created_at,
                    ))
                    .load(self)?;
                for r in rows {
                    out.push(format!(
                        "alert to {} of {}: available {} threshold {} at {}",
                        r.1, r.0, r.2, r.3, r.4
                    ));
                }
                Ok((out, tokens))
            }
        }
    };
}

impl_test_conn!(SqliteConnection);
impl_test_conn!(PgConnection);

fn token(tokens: &HashMap<HoldId, String>, id: HoldId) -> String {
    tokens
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("<hold {id} not in the table>"))
}

fn show_hold(h: &Hold, tokens: &HashMap<HoldId, String>) -> String {
    format!(
        "hold {} (id is {}) of {}: amount {} {} captured {:?} {:?} created {} expires {} \
         closed {:?}",
        h.token_hash,
        token(tokens, h.id),
        h.account_id,
        h.amount.units(),
        h.status.as_str(),
        h.captured.map(Credits::units),
        h.description,
        h.created_at.micros(),
        h.expires_at.micros(),
        h.closed_at.map(Timestamp::micros)
    )
}

fn show_reply(reply: &Reply, tokens: &HashMap<HoldId, String>) -> String {
    match reply {
        Ok(Output::Authorized(hold, balance)) => {
            format!("authorized {} {balance:?}", show_hold(hold, tokens))
        }
        Ok(Output::Closed(c)) => format!(
            "closed {} replayed {} {:?}",
            show_hold(&c.hold, tokens),
            c.replayed,
            c.balance
        ),
        Err(e) => format!("refused {e:?}"),
    }
}

fn show_op(op: &Op, now: Timestamp) -> String {
    match op {
        Op::Authorize {
            account_id,
            amount,
            expires_at,
            token_hash,
            ..
        } => format!(
            "authorize {token_hash} on {account_id}: {} until {} at {}",
            amount.units(),
            expires_at.micros(),
            now.micros()
        ),
        Op::Capture {
            token_hash,
            amount,
            service_id,
        } => format!(
            "capture {token_hash} {:?} service {service_id:?} at {}",
            amount.map(Credits::units),
            now.micros()
        ),
        Op::Cancel {
            token_hash,
            service_id,
        } => format!(
            "cancel {token_hash} service {service_id:?} at {}",
            now.micros()
        ),
    }
}

/// One step of a sequence: a batch for the engine, or something that runs outside it.
enum Step {
    Batch(Vec<(Op, Timestamp)>),
    Grant {
        account_id: AccountId,
        amount: i64,
        expires_at: Timestamp,
        now: Timestamp,
    },
    Sweep {
        account_id: AccountId,
        now: Timestamp,
    },
    Disable {
        account_id: AccountId,
        disabled: bool,
    },
}

/// Picks the sequence's next step and moves its clock.
struct Generator {
    rng: Rng,
    seed: u64,
    now: i64,
    accounts: Vec<AccountId>,
    services: Vec<ServiceId>,
    /// Tokens of the holds authorized so far, with their amounts: a caller learns a
    /// hold's token only from the committed answer to its authorize, so a capture or
    /// cancel never names a hold of its own batch.
    tokens: Vec<(String, i64)>,
    /// Authorize calls made, to name their tokens.
    issued: usize,
    disabled: Vec<bool>,
}

impl Generator {
    fn lot_expiry(&mut self) -> Timestamp {
        // Few distinct expiries, so lots often share one and their id decides the order.
        let choices = [30 * MINUTE, HOUR, HOUR, 3 * HOUR, 24 * HOUR];
        if self.rng.percent(20) {
            NEVER
        } else {
            Timestamp::from_micros(self.now + *self.rng.pick(&choices))
        }
    }

    /// One engine operation.
    fn op(&mut self) -> Op {
        let roll = self.rng.below(100);
        let service_id = if self.rng.percent(10) {
            Some(*self.rng.pick(&self.services))
        } else {
            None
        };
        if roll < 45 || self.tokens.is_empty() {
            let amount = if self.rng.percent(3) {
                0
            } else {
                self.rng.range(1, 400)
            };
            let expires_at = if self.rng.percent(3) {
                self.now - self.rng.range(0, HOUR)
            } else {
                self.now + self.rng.range(MINUTE, 3 * HOUR)
            };
            let token_hash = format!("s{:x}-t{}", self.seed, self.issued);
            self.issued += 1;
            return Op::Authorize {
                account_id: *self.rng.pick(&self.accounts),
                amount: Credits::from_units(amount).unwrap_or(Credits::ZERO),
                expires_at: Timestamp::from_micros(expires_at),
                token_hash,
                description: self.rng.percent(50).then(|| "SMS".to_owned()),
            };
        }
        let token_hash = if self.rng.percent(8) {
            format!("s{:x}-unknown{}", self.seed, self.rng.below(1000))
        } else {
            self.rng.pick(&self.tokens).0.clone()
        };
        if roll < 75 {
            let asked = self
                .tokens
                .iter()
                .find(|(t, _)| *t == token_hash)
                .map_or(100, |(_, a)| *a);
            let amount = match self.rng.below(4) {
                0 => None,
                1 => Some(asked),
                2 => Some(self.rng.range(0, asked)),
                _ => Some(asked + self.rng.range(1, 300)),
            };
            Op::Capture {
                token_hash,
                amount: amount.map(|a| Credits::from_units(a).unwrap_or(Credits::ZERO)),
                service_id,
            }
        } else {
            Op::Cancel {
                token_hash,
                service_id,
            }
        }
    }

    fn step(&mut self) -> Step {
        let roll = self.rng.below(100);
        if roll < 12 {
            // Time passes: holds and lots expire.
            self.now += match self.rng.below(3) {
                0 => self.rng.range(1, 10) * MINUTE,
                1 => self.rng.range(10, 120) * MINUTE,
                _ => self.rng.range(2, 30) * HOUR,
            };
        }
        let account_id = *self.rng.pick(&self.accounts);
        let now = Timestamp::from_micros(self.now);
        match roll {
            0..12 | 30..100 => {
                let n = self.rng.range(1, 8);
                let ops = (0..n)
                    .map(|_| {
                        self.now += self.rng.range(0, 3) * 1_000_000;
                        (self.op(), Timestamp::from_micros(self.now))
                    })
                    .collect();
                Step::Batch(ops)
            }
            12..24 => Step::Grant {
                account_id,
                amount: self.rng.range(100, 1500),
                expires_at: self.lot_expiry(),
                now,
            },
            24..27 => Step::Sweep { account_id, now },
            _ => {
                let i = self
                    .accounts
                    .iter()
                    .position(|a| *a == account_id)
                    .unwrap_or(0);
                self.disabled[i] = !self.disabled[i] && self.rng.percent(40);
                Step::Disable {
                    account_id,
                    disabled: self.disabled[i],
                }
            }
        }
    }
}

fn grant<C: TestConn>(
    c: &mut C,
    account_id: AccountId,
    amount: i64,
    expires_at: Timestamp,
    now: Timestamp,
) -> String {
    let outcome = c.transaction(|c| {
        ops::grant(
            c,
            &Grant {
                account_id,
                amount: Credits::from_units(amount)?,
                expires_at,
                origin: EntryKind::Topup,
                reference: None,
                description: Some("top-up"),
            },
            now,
        )
    });
    format!("{outcome:?}")
}

/// The two sides of one backend: a connection for the SQL repository, and the engine's
/// worker with a connection of its own database for what runs outside the engine.
struct Sides<'a, C> {
    sql: &'a mut C,
    engine: Worker,
    outside: &'a mut C,
}

fn job(op: Op, now: Timestamp) -> Job {
    let (reply, _) = std::sync::mpsc::sync_channel(1);
    Job {
        op,
        now,
        deadline: Instant::now() + Duration::from_secs(60),
        ticket: Ticket::new(),
        reply: ReplyTo::Blocking(reply),
    }
}

/// How many answers of each kind the SQL side gave, to show what the sequences reached.
type Tally = BTreeMap<String, usize>;

fn kind(reply: &Reply) -> String {
    match reply {
        Ok(Output::Authorized(..)) => "authorized".into(),
        Ok(Output::Closed(c)) if c.replayed => format!("{} (replayed)", c.hold.status.as_str()),
        Ok(Output::Closed(c)) => c.hold.status.as_str().into(),
        Err(e) => {
            let debug = format!("{e:?}");
            let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
            format!("refused {}", &debug[..end])
        }
    }
}

/// Runs one seed's sequence on both sides; the first difference is the error.
fn run_seed<C: TestConn>(
    s: &mut Sides<'_, C>,
    seed: u64,
    backend: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let fail = |step: usize, what: &str, detail: String| {
        format!(
            "overlay ≠ SQL on {backend}, seed {seed} (replay: IAP_SIDECAR_OVERLAY_SEEDS={seed}), \
             step {step}: {what}\n{detail}"
        )
    };
    let db = |e: diesel::result::Error| format!("seed {seed}: {e}");
    let mut g = Generator {
        rng: Rng(seed),
        seed,
        now: START,
        accounts: Vec::new(),
        services: Vec::new(),
        tokens: Vec::new(),
        issued: 0,
        disabled: vec![false; ACCOUNTS],
    };
    for name in ["a", "b"] {
        let name = format!("equivalence-{seed:x}-{name}");
        let a = s.sql.add_service(&name).map_err(db)?;
        let b = s.outside.add_service(&name).map_err(db)?;
        if a != b {
            return Err(fail(0, "service ids differ", format!("{a} / {b}")));
        }
        g.services.push(a);
    }
    for i in 0..ACCOUNTS {
        let service_id = g.services[i % 2];
        let token = format!("s{seed:x}-account{i}");
        let threshold = g.rng.range(0, 300);
        let a = s
            .sql
            .add_account(service_id, &token, threshold)
            .map_err(db)?;
        let b = s
            .outside
            .add_account(service_id, &token, threshold)
            .map_err(db)?;
        if a != b {
            return Err(fail(0, "account ids differ", format!("{a} / {b}")));
        }
        g.accounts.push(a);
        for _ in 0..g.rng.range(1, 3) {
            let amount = g.rng.range(100, 800);
            let expires_at = g.lot_expiry();
            let now = Timestamp::from_micros(START);
            let x = grant(s.sql, a, amount, expires_at, now);
            let y = grant(s.outside, a, amount, expires_at, now);
            if x != y {
                return Err(fail(0, "grant", format!("  sql:     {x}\n  overlay: {y}")));
            }
        }
    }
    let ids = g.accounts.clone();
    for i in 1..=STEPS {
        let step = g.step();
        let (what, answers) = match step {
            Step::Batch(ops) => {
                let what = ops
                    .iter()
                    .map(|(op, now)| show_op(op, *now))
                    .collect::<Vec<_>>()
                    .join("; ");
                let jobs: Vec<Job> = ops.into_iter().map(|(op, now)| job(op, now)).collect();
                let sql: Vec<Reply> = jobs
                    .iter()
                    .map(|j| s.sql.transaction(|c| run_op(c, j)))
                    .collect();
                let engine = s
                    .engine
                    .commit(&jobs)
                    .map_err(|e| fail(i, &what, format!("the engine's batch failed: {e}")))?;
                (format!("batch [{what}]"), Some((sql, engine)))
            }
            Step::Grant {
                account_id,
                amount,
                expires_at,
                now,
            } => {
                let x = grant(s.sql, account_id, amount, expires_at, now);
                let y = grant(s.outside, account_id, amount, expires_at, now);
                let what = format!(
                    "grant {amount} to {account_id} until {} at {}",
                    expires_at.micros(),
                    now.micros()
                );
                if x != y {
                    return Err(fail(i, &what, format!("  sql:     {x}\n  overlay: {y}")));
                }
                (what, None)
            }
            Step::Sweep { account_id, now } => {
                let x = s
                    .sql
                    .transaction(|c| ops::settle_account(c, account_id, now));
                let y = s
                    .outside
                    .transaction(|c| ops::settle_account(c, account_id, now));
                let what = format!("sweep {account_id} at {}", now.micros());
                let (x, y) = (format!("{x:?}"), format!("{y:?}"));
                if x != y {
                    return Err(fail(i, &what, format!("  sql:     {x}\n  overlay: {y}")));
                }
                (what, None)
            }
            Step::Disable {
                account_id,
                disabled,
            } => {
                s.sql.set_disabled(account_id, disabled).map_err(db)?;
                s.outside.set_disabled(account_id, disabled).map_err(db)?;
                (format!("set {account_id} disabled {disabled}"), None)
            }
        };
        let (sql_rows, sql_tokens) = s.sql.snapshot(&ids).map_err(db)?;
        let (engine_rows, engine_tokens) = s.outside.snapshot(&ids).map_err(db)?;
        if let Some((sql, engine)) = answers {
            if sql.len() != engine.len() {
                return Err(fail(
                    i,
                    &what,
                    format!(
                        "{} answers from SQL, {} from the engine",
                        sql.len(),
                        engine.len()
                    ),
                ));
            }
            *tally.entry("batches".into()).or_default() += 1;
            for reply in &sql {
                *tally.entry(kind(reply)).or_default() += 1;
                if let Ok(Output::Authorized(hold, _)) = reply {
                    g.tokens
                        .push((hold.token_hash.clone(), hold.amount.units()));
                }
            }
            for (k, (x, y)) in sql.iter().zip(&engine).enumerate() {
                let (x, y) = (show_reply(x, &sql_tokens), show_reply(y, &engine_tokens));
                if x != y {
                    return Err(fail(
                        i,
                        &what,
                        format!("answer {k}:\n  sql:     {x}\n  overlay: {y}"),
                    ));
                }
            }
        }
        let mut lines = sql_rows.iter().zip(&engine_rows);
        if let Some((x, y)) = lines.find(|(x, y)| x != y) {
            return Err(fail(
                i,
                &what,
                format!("first differing row:\n  sql:     {x}\n  overlay: {y}"),
            ));
        }
        if sql_rows.len() != engine_rows.len() {
            return Err(fail(
                i,
                &what,
                format!(
                    "rows: sql has {}, overlay {}:\n  sql:     {:?}\n  overlay: {:?}",
                    sql_rows.len(),
                    engine_rows.len(),
                    sql_rows.get(engine_rows.len()),
                    engine_rows.get(sql_rows.len())
                ),
            ));
        }
        let now = Timestamp::from_micros(g.now);
        for &id in &ids {
            let x = format!("{:?}", ops::balance(s.sql, id, now));
            let y = format!("{:?}", ops::balance(s.outside, id, now));
            if x != y {
                return Err(fail(
                    i,
                    &what,
                    format!("balance of {id}:\n  sql:     {x}\n  overlay: {y}"),
                ));
            }
        }
    }
    Ok(())
}

/// The seeds to run, and whether they were chosen through the environment.
fn seeds() -> (Vec<u64>, bool) {
    let mut seeds = FIXED_SEEDS.to_vec();
    let mut chosen = false;
    if let Ok(list) = std::env::var("IAP_SIDECAR_OVERLAY_SEEDS") {
        chosen = true;
        seeds = list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    let random: u64 = std::env::var("IAP_SIDECAR_OVERLAY_RANDOM_SEEDS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut clock = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64));
    for _ in 0..random {
        let seed = clock.next();
        eprintln!("overlay ≡ SQL: random seed {seed}");
        seeds.push(seed);
    }
    (seeds, chosen)
}

fn settings(url: String) -> DatabaseSettings {
    DatabaseSettings {
        url: Secret::new(url),
        pool_size: 3,
        ..DatabaseSettings::default()
    }
}

fn open(url: String) -> Result<Pool, String> {
    let pool = Pool::open(&settings(url)).map_err(|e| e.to_string())?;
    pool.migrate().map_err(|e| e.to_string())?;
    Ok(pool)
}

fn run_all(sql: Pool, engine: Pool, backend: &str) -> Result<(), String> {
    let worker = Worker::new(
        engine.clone(),
        Arc::new(Counters::default()),
        Instant::now(),
    );
    let (seeds, chosen) = seeds();
    let mut tally = Tally::new();
    match (&sql, &engine) {
        (Pool::Sqlite(a, _), Pool::Sqlite(b, _)) => {
            let mut a = a.get().map_err(|e| e.to_string())?;
            let mut b = b.get().map_err(|e| e.to_string())?;
            let mut sides = Sides {
                sql: &mut *a,
                engine: worker,
                outside: &mut *b,
            };
            for seed in seeds {
                run_seed(&mut sides, seed, backend, &mut tally)?;
            }
        }
        (Pool::Pg(a), Pool::Pg(b)) => {
            let mut a = a.get().map_err(|e| e.to_string())?;
            let mut b = b.get().map_err(|e| e.to_string())?;
            let mut sides = Sides {
                sql: &mut *a,
                engine: worker,
                outside: &mut *b,
            };
            for seed in seeds {
                run_seed(&mut sides, seed, backend, &mut tally)?;
            }
        }
        _ => return Err("the two sides are on different backends".into()),
    }
    eprintln!("overlay ≡ SQL on {backend}: {tally:?}");
    // The fixed seeds reach every answer an operation can give: a change that stops them
    // doing so weakens the test, and is caught here.
    let expected = [
        "authorized",
        "captured",
        "captured (replayed)",
        "cancelled",
        "cancelled (replayed)",
        "expired (replayed)",
        "refused InsufficientCredit",
        "refused UnknownHold",
        "refused HoldExpired",
        "refused HoldClosed",
        "refused WrongService",
        "refused Disabled",
        "refused InvalidExpiry",
    ];
    let missed: Vec<&str> = expected
        .into_iter()
        .filter(|k| !tally.contains_key(*k))
        .collect();
    if !chosen && !missed.is_empty() {
        return Err(format!("the fixed seeds no longer reach {missed:?}"));
    }
    Ok(())
}

#[test]
fn overlay_matches_sql_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let sql = open(url("sql.db")).expect("the SQL side's database");
    let engine = open(url("engine.db")).expect("the engine side's database");
    if let Err(e) = run_all(sql, engine, "sqlite") {
        panic!("{e}");
    }
}

/// Drops the test's PostgreSQL databases however the test ends.
struct Dropped {
    admin_url: String,
    names: Vec<String>,
}

impl Drop for Dropped {
    fn drop(&mut self) {
        let Ok(mut c) = PgConnection::establish(&self.admin_url) else {
            return;
        };
        for name in &self.names {
            let dropped = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c);
            if let Err(e) = dropped {
                eprintln!("could not drop test database {name}: {e}");
            }
        }
    }
}

#[test]
fn overlay_matches_sql_on_postgres() {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let admin_url = match std::env::var("IAP_SIDECAR_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ if ci => panic!("IAP_SIDECAR_TEST_PG_URL is required when CI=true"),
        _ => {
            eprintln!("overlay ≡ SQL on PostgreSQL not run: IAP_SIDECAR_TEST_PG_URL is not set");
            return;
        }
    };
    let mut admin =
        PgConnection::establish(&admin_url).expect("connecting to IAP_SIDECAR_TEST_PG_URL");
    let stem = format!("iap_equiv_{}", random_hex(6));
    let guard = Dropped {
        admin_url: admin_url.clone(),
        names: vec![format!("{stem}_sql"), format!("{stem}_engine")],
    };
    let mut pools = Vec::new();
    for name in &guard.names {
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("CREATE DATABASE (the role needs CREATEDB)");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("IAP_SIDECAR_TEST_PG_URL has no database name"),
        };
        pools.push(open(url).expect("a migrated test database"));
    }
    let engine = pools.pop().expect("two pools");
    let sql = pools.pop().expect("two pools");
    let outcome = run_all(sql, engine, "postgres");
    drop(guard);
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
