//! The database goes away for longer than the call deadline while 16 clients charge:
//! PostgreSQL refuses connections and its backends are terminated
//! (`ALLOW_CONNECTIONS false` + `pg_terminate_backend`); SQLite is locked by another
//! connection's `BEGIN IMMEDIATE`. Every call must be answered within its deadline plus
//! one second; no hold or capture may be in the ledger for a call answered with an error;
//! `/health` must say 503 quickly during the outage; charging must resume by itself
//! afterwards and the audit invariants must hold.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::{PgConnection, SqliteConnection};
use libtest_mimic::Failed;

use iap_sidecar::config::{Secret, Settings};
use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{Account, EntryKind, ServiceId};
use iap_sidecar::store::{GrantRequest, Store};

use crate::support::{Backend, DbOptions, TestDb, audit_clean, credits};

const CLIENTS: usize = 16;
/// `database.call_deadline_ms` of the server under test: small, to keep the test short.
const DEADLINE: Duration = Duration::from_millis(1_000);
/// `database.health_timeout_ms`.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the database is away: several deadlines.
const OUTAGE: Duration = Duration::from_millis(3_500);
/// Charging before the outage, and after it (where everything must succeed again).
const BEFORE: Duration = Duration::from_millis(800);
const AFTER: Duration = Duration::from_millis(3_000);
/// Calls started this long after the database is back must all succeed.
const SETTLE: Duration = Duration::from_millis(1_500);

/// One call as its client saw it.
struct Call {
    /// The hold's description: names the authorize and the capture that followed.
    name: String,
    capture: bool,
    ok: bool,
    started: Instant,
    took: Duration,
    error: Option<String>,
}

pub fn outage_under_load(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let service = db.service("outage")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut settings = Settings::default();
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = Some(1);
    settings.database.url = Secret::new(db.url());
    settings.database.pool_size = 4;
    settings.database.pool_timeout_secs = 5;
    settings.database.call_deadline_ms = DEADLINE.as_millis() as u64;
    settings.database.health_timeout_ms = HEALTH_TIMEOUT.as_millis() as u64;
    settings.alerts.worker = false;
    let started = rt.block_on(async { iap_sidecar::app::start(settings) })?;
    let store = started.store.clone();
    let base = format!("http://{}", started.addr);
    let handle = started.server.handle();
    let server = rt.spawn(started.wait());

    // On the server's store, whose clock is the real one the calls run on.
    let account = account(&store, service.id, "outage-token-0001")?;
    store.grant(&GrantRequest {
        account_id: account.id,
        amount: credits(1_000_000),
        expires_at: NEVER,
        origin: EntryKind::Grant,
        reference: None,
        description: Some("outage test"),
    })?;
    let health = |rt: &tokio::runtime::Runtime| -> Result<(u16, Duration), String> {
        let t = Instant::now();
        let status = rt
            .block_on(async { reqwest::get(format!("{base}/health")).await })
            .map_err(|e| e.to_string())?
            .status()
            .as_u16();
        Ok((status, t.elapsed()))
    };
    let (status, _) = health(&rt)?;
    if status != 200 {
        return Err(format!("/health before the outage: {status}").into());
    }

    let calls = Mutex::new(Vec::<Call>::new());
    let stop = AtomicBool::new(false);
    let serial = AtomicUsize::new(0);
    let mut outage_window = (Instant::now(), Instant::now());
    let mut health_during = Vec::new();
    thread::scope(|scope| -> Result<(), Failed> {
        for client in 0..CLIENTS {
            let (store, calls, stop, serial) = (&store, &calls, &stop, &serial);
            scope.spawn(move || {
                // Half the clients wait on a thread, half as async tasks (what HTTP does).
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("client runtime");
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("c{client}-{}", serial.fetch_add(1, Ordering::SeqCst));
                    let t = Instant::now();
                    let result = if client % 2 == 0 {
                        store.authorize(account.id, credits(1), 1, Some(&name))
                    } else {
                        rt.block_on(store.authorize_async(account.id, credits(1), 1, Some(&name)))
                    };
                    let took = t.elapsed();
                    let token = match result {
                        Ok((_, token, _)) => Some(token),
                        Err(ref e) => {
                            calls.lock().expect("calls").push(Call {
                                name: name.clone(),
                                capture: false,
                                ok: false,
                                started: t,
                                took,
                                error: Some(e.to_string()),
                            });
                            None
                        }
                    };
                    let Some(token) = token else { continue };
                    calls.lock().expect("calls").push(Call {
                        name: name.clone(),
                        capture: false,
                        ok: true,
                        started: t,
                        took,
                        error: None,
                    });
                    let t = Instant::now();
                    let result = if client % 2 == 0 {
                        store.capture(&token, Some(credits(1)), Some(service.id))
                    } else {
                        rt.block_on(store.capture_async(&token, Some(credits(1)), Some(service.id)))
                    };
                    calls.lock().expect("calls").push(Call {
                        name,
                        capture: true,
                        ok: result.is_ok(),
                        started: t,
                        took: t.elapsed(),
                        error: result.err().map(|e| e.to_string()),
                    });
                }
            });
        }
        let result = (|| -> Result<(), Failed> {
            thread::sleep(BEFORE);
            // The outage begins as `start` begins: calls may fail from its first
            // statement on (terminated backends fail their calls at once, possibly
            // before `start` returns).
            let began = Instant::now();
            let outage = Outage::start(&db)?;
            // It lasts OUTAGE from when it holds: on SQLite, taking the write lock from
            // under a loaded sidecar can itself take a while (the outage had ended by the
            // time it began, and refused nothing).
            let holding = Instant::now();
            // Each /health during the outage must say 503 within the bound.
            while holding.elapsed() < OUTAGE {
                health_during.push(health(&rt)?);
                thread::sleep(Duration::from_millis(200));
            }
            outage.end()?;
            outage_window = (began, Instant::now());
            thread::sleep(AFTER);
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        result
    })?;

    let calls = calls.into_inner().map_err(|e| e.to_string())?;
    let (began, ended) = outage_window;
    let errors: Vec<&Call> = calls.iter().filter(|c| !c.ok).collect();
    let slowest = calls.iter().map(|c| c.took).max().unwrap_or_default();
    let health_slowest = health_during.iter().map(|h| h.1).max().unwrap_or_default();
    let mut kinds = BTreeMap::<String, usize>::new();
    for c in &errors {
        *kinds
            .entry(
                c.error
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .take(70)
                    .collect(),
            )
            .or_default() += 1;
    }
    eprintln!(
        "[outage {}] calls {} (authorizes {}, captures {}), errors {}, max latency {} ms, \
         /health during the outage {:?} (slowest {} ms); errors: {kinds:?}",
        backend.name(),
        calls.len(),
        calls.iter().filter(|c| !c.capture).count(),
        calls.iter().filter(|c| c.capture).count(),
        errors.len(),
        slowest.as_millis(),
        health_during.iter().map(|h| h.0).collect::<Vec<_>>(),
        health_slowest.as_millis(),
    );

    if slowest > DEADLINE + Duration::from_secs(1) {
        return Err(format!("a call took {} ms", slowest.as_millis()).into());
    }
    if errors.is_empty() {
        return Err("the outage refused no call: the test did not test anything".into());
    }
    // A call refused must have been waiting while the database was away.
    if let Some(late) = errors
        .iter()
        .find(|c| c.started + c.took < began || c.started > ended + SETTLE)
    {
        return Err(format!(
            "{} failed outside the outage ({}): {:?}",
            late.name,
            if late.started < began {
                "before"
            } else {
                "after"
            },
            late.error
        )
        .into());
    }
    if !calls.iter().any(|c| c.ok && c.started > ended + SETTLE) {
        return Err("charging did not resume after the outage".into());
    }
    if health_during.is_empty()
        || health_during
            .iter()
            .any(|(status, took)| *status != 503 || *took > HEALTH_TIMEOUT + Duration::from_secs(1))
    {
        return Err(format!("/health during the outage: {health_during:?}").into());
    }
    let (status, _) = health(&rt)?;
    if status != 200 {
        return Err(format!("/health after the outage: {status}").into());
    }

    // The ledger holds exactly what the answers said.
    let holds: BTreeMap<String, String> = hold_statuses(&db)?;
    let mut captured = 0;
    for c in &calls {
        let status = holds.get(&c.name).map(String::as_str);
        let expected = match (c.capture, c.ok) {
            (false, false) => None,
            (false, true) => continue,
            (true, true) => {
                captured += 1;
                Some("captured")
            }
            (true, false) => Some("open"),
        };
        if status != expected {
            return Err(format!(
                "{} ({}, answered {}): the ledger has {status:?}",
                c.name,
                if c.capture { "capture" } else { "authorize" },
                c.error.as_deref().unwrap_or("ok"),
            )
            .into());
        }
    }
    let authorized = calls.iter().filter(|c| !c.capture && c.ok).count();
    if holds.len() != authorized {
        return Err(format!(
            "{} holds for {authorized} authorizes answered ok",
            holds.len()
        )
        .into());
    }
    let balance = store.balance(account.id)?;
    if balance.balance != credits(1_000_000 - captured) {
        return Err(format!("balance {} after {captured} captures", balance.balance).into());
    }
    audit_clean(&store, account.id)?;

    handle_stop(&rt, handle, server);
    Ok(())
}

/// The account of `token`, registered through `store` (and its clock).
fn account(store: &Store, service_id: ServiceId, token: &str) -> Result<Account, String> {
    let token = AccountToken::from_raw(token).ok_or("invalid account token")?;
    store
        .ensure_account(service_id, &token, Some("db-uuid"))
        .map_err(|e| format!("ensure_account: {e}"))
}

fn handle_stop(
    rt: &tokio::runtime::Runtime,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    rt.block_on(async {
        handle.stop(true).await;
        let _ = server.await;
    });
}

/// The database made unavailable until [`Outage::end`].
enum Outage {
    /// A connection of another process holding SQLite's write lock.
    Sqlite(SqliteConnection),
    /// The test database refuses connections; `admin` is on another database.
    Postgres { admin: PgConnection, name: String },
}

impl Outage {
    fn start(db: &TestDb) -> Result<Outage, String> {
        if let Some(path) = db.sqlite_path() {
            let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            // The sidecar may be writing this instant: wait for its turn like any writer.
            diesel::sql_query("PRAGMA busy_timeout = 5000")
                .execute(&mut c)
                .map_err(|e| e.to_string())?;
            diesel::sql_query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .map_err(|e| e.to_string())?;
            return Ok(Outage::Sqlite(c));
        }
        let url = db.url();
        let name = url
            .rsplit('/')
            .next()
            .and_then(|n| n.split('?').next())
            .ok_or("database name")?
            .to_owned();
        let admin_url = std::env::var("IAP_SIDECAR_TEST_PG_URL").map_err(|e| e.to_string())?;
        let mut admin = PgConnection::establish(admin_url.trim()).map_err(|e| e.to_string())?;
        diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&mut admin)
            .map_err(|e| e.to_string())?;
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .execute(&mut admin)
        .map_err(|e| e.to_string())?;
        Ok(Outage::Postgres { admin, name })
    }

    fn end(self) -> Result<(), String> {
        match self {
            Outage::Sqlite(mut c) => diesel::sql_query("ROLLBACK")
                .execute(&mut c)
                .map(drop)
                .map_err(|e| e.to_string()),
            Outage::Postgres { mut admin, name } => {
                diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

#[derive(QueryableByName)]
struct HoldRow {
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Every hold of the database: description → status.
fn hold_statuses(db: &TestDb) -> Result<BTreeMap<String, String>, String> {
    const SQL: &str = "SELECT description, status FROM holds";
    let rows: Vec<HoldRow> = match db.sqlite_path() {
        Some(path) => {
            let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            diesel::sql_query(SQL).load(&mut c)
        }
        None => {
            let mut c = PgConnection::establish(&db.url()).map_err(|e| e.to_string())?;
            diesel::sql_query(SQL).load(&mut c)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.description?, r.status)))
        .collect())
}

/// Finding 10's `/health` part: every write failing (a trigger refuses the holds the
/// ledger writes, as a full disk would refuse the pages) must turn `/health` to 503 at
/// once, while reads still work; fixed, it says 200 again.
pub fn health_reports_failing_writes(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let service = db.service("health")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut settings = Settings::default();
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = Some(1);
    settings.database.url = Secret::new(db.url());
    settings.database.pool_size = 2;
    settings.alerts.worker = false;
    let started = rt.block_on(async { iap_sidecar::app::start(settings) })?;
    let store = started.store.clone();
    let base = format!("http://{}", started.addr);
    let handle = started.server.handle();
    let server = rt.spawn(started.wait());
    let account = account(&store, service.id, "health-token-0001")?;
    store.grant(&GrantRequest {
        account_id: account.id,
        amount: credits(100),
        expires_at: NEVER,
        origin: EntryKind::Grant,
        reference: None,
        description: None,
    })?;
    let health = || -> Result<(u16, Duration), String> {
        let t = Instant::now();
        let status = rt
            .block_on(async { reqwest::get(format!("{base}/health")).await })
            .map_err(|e| e.to_string())?
            .status()
            .as_u16();
        Ok((status, t.elapsed()))
    };
    if health()?.0 != 200 {
        return Err("/health before writes fail".into());
    }

    let (fail, heal): (&[&str], &[&str]) = if backend.is_postgres() {
        (
            &[
                "CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
                "CREATE TRIGGER refuse_writes BEFORE INSERT ON holds \
                 FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
            ],
            &[
                "DROP TRIGGER refuse_writes ON holds",
                "DROP FUNCTION refuse_writes()",
            ],
        )
    } else {
        (
            &["CREATE TRIGGER refuse_writes BEFORE INSERT ON holds \
                 BEGIN SELECT RAISE(ABORT, 'no space left on device'); END"],
            &["DROP TRIGGER refuse_writes"],
        )
    };
    for sql in fail {
        db.raw_execute(sql)?;
    }
    if store.authorize(account.id, credits(1), 1, None).is_ok() {
        return Err("an authorize went through although its hold cannot be written".into());
    }
    let (status, took) = health()?;
    if status != 503 || took > Duration::from_secs(2) {
        return Err(format!("/health while every write fails: {status} in {took:?}").into());
    }
    for sql in heal {
        db.raw_execute(sql)?;
    }
    store.authorize(account.id, credits(1), 1, None)?;
    let (status, _) = health()?;
    if status != 200 {
        return Err(format!("/health once writes work again: {status}").into());
    }
    audit_clean(&store, account.id)?;
    handle_stop(&rt, handle, server);
    Ok(())
}
