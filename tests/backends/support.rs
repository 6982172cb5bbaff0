//! Test databases for both backends, a manual clock and small helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use iap_sidecar::config::{DatabaseSettings, Secret, redact_url};
use iap_sidecar::ledger::token::{AccountToken, random_hex, sha256_hex};
use iap_sidecar::ledger::{
    Account, AccountId, Balance, Credits, HoldStatus, LedgerError, Service, ServiceId, Timestamp,
};
use iap_sidecar::store::{NewService, Store};

pub const MINUTE: i64 = 60_000_000;
pub const HOUR: i64 = 60 * MINUTE;

/// Where the manual clock starts: 2027-01-15T08:00:00Z.
const CLOCK_START: i64 = 1_800_000_000_000_000;

/// Which database a trial runs against.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// A server URL whose role may create databases.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }
}

/// How to open the store of a test database.
#[derive(Clone, Copy, Debug, Default)]
pub struct DbOptions {
    /// Pool size; the backend default when `None`.
    pub pool_size: Option<u32>,
    /// SQLite's `wal_autocheckpoint`; the default when `None`.
    pub wal_autocheckpoint: Option<u32>,
}

impl DbOptions {
    /// The defaults with a pool of `size` connections.
    pub fn pool(size: u32) -> DbOptions {
        DbOptions {
            pool_size: Some(size),
            ..DbOptions::default()
        }
    }
}

/// Removes a test database when the test ends, whatever its outcome.
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = self {
            let dropped = PgConnection::establish(admin_url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

/// A fresh, migrated database with a store whose clock only moves when told.
pub struct TestDb {
    // Declared first so the pool closes before the database is dropped.
    pub store: Store,
    clock: Arc<AtomicI64>,
    /// What a direct connection opens: a file path (SQLite) or a URL (PostgreSQL).
    target: Target,
    _cleanup: Cleanup,
}

enum Target {
    Sqlite(String),
    Postgres(String),
}

impl TestDb {
    pub fn new(backend: &Backend, options: DbOptions) -> Result<TestDb, String> {
        let defaults = DatabaseSettings::default();
        let pool_size = options.pool_size.unwrap_or(defaults.pool_size);
        let (url, target, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("iap-sidecar-test-")
                    .tempdir()
                    .map_err(|e| format!("creating a temporary directory: {e}"))?;
                let path = dir.path().join("ledger.db");
                let path = path
                    .to_str()
                    .ok_or("temporary path is not UTF-8")?
                    .to_owned();
                (
                    format!("sqlite://{path}"),
                    Target::Sqlite(path),
                    Cleanup::Sqlite(dir),
                )
            }
            Backend::Postgres { admin_url } => {
                let name = format!("iap_test_{}", random_hex(8));
                let mut admin = PgConnection::establish(admin_url).map_err(|e| {
                    format!(
                        "connecting to IAP_SIDECAR_TEST_PG_URL ({}): {e}",
                        redact_url(admin_url)
                    )
                })?;
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .map_err(|e| {
                        format!("CREATE DATABASE {name} (the role needs CREATEDB): {e}")
                    })?;
                let url = with_database(admin_url, &name);
                (
                    url.clone(),
                    Target::Postgres(url),
                    Cleanup::Postgres {
                        admin_url: admin_url.clone(),
                        name,
                    },
                )
            }
        };
        let settings = DatabaseSettings {
            url: Secret::new(url),
            pool_size,
            sqlite_wal_autocheckpoint: options
                .wal_autocheckpoint
                .unwrap_or(defaults.sqlite_wal_autocheckpoint),
            ..defaults
        };
        let clock = Arc::new(AtomicI64::new(CLOCK_START));
        let reader = Arc::clone(&clock);
        let store = Store::connect(&settings)
            .map_err(|e| format!("Store::connect ({}): {e}", backend.name()))?
            .with_clock(Arc::new(move || {
                Timestamp::from_micros(reader.load(Ordering::SeqCst))
            }));
        store
            .migrate()
            .map_err(|e| format!("migrating ({}): {e}", backend.name()))?;
        Ok(TestDb {
            store,
            clock,
            target,
            _cleanup: cleanup,
        })
    }

    /// The database URL, for starting a whole server on this database.
    pub fn url(&self) -> String {
        match &self.target {
            Target::Sqlite(path) => format!("sqlite://{path}"),
            Target::Postgres(url) => url.clone(),
        }
    }

    /// A second store on the same database and clock, with its own pool and ledger
    /// engine: what another sidecar process would be.
    /// SQLite: the database file's path.
    pub fn sqlite_path(&self) -> Option<&str> {
        match &self.target {
            Target::Sqlite(path) => Some(path),
            Target::Postgres(_) => None,
        }
    }

    pub fn another_store(&self) -> Result<Store, String> {
        let settings = DatabaseSettings {
            url: Secret::new(self.url()),
            ..DatabaseSettings::default()
        };
        let clock = Arc::clone(&self.clock);
        Ok(Store::connect(&settings)
            .map_err(|e| format!("Store::connect: {e}"))?
            .with_clock(Arc::new(move || {
                Timestamp::from_micros(clock.load(Ordering::SeqCst))
            })))
    }

    /// The manual clock's current time.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.clock.load(Ordering::SeqCst))
    }

    pub fn advance(&self, micros: i64) {
        assert!(micros >= 0, "the test clock only moves forward");
        self.clock.fetch_add(micros, Ordering::SeqCst);
    }

    /// Registers a service named `name` whose key is `key-{name}`.
    pub fn service(&self, name: &str) -> Result<Service, String> {
        self.store
            .create_service(
                &NewService {
                    technical_name: name.to_owned(),
                    label: format!("Test service {name}"),
                    unit_name: "credits".into(),
                    integer_balance: false,
                    trial_credits: Credits::ZERO,
                    trial_days: 0,
                },
                &sha256_hex(&format!("key-{name}")),
            )
            .map_err(|e| format!("create_service({name}): {e}"))
    }

    /// The account of raw token `token` for `service_id`.
    pub fn account(&self, service_id: ServiceId, token: &str) -> Result<Account, String> {
        let token = AccountToken::from_raw(token).ok_or("invalid account token")?;
        self.store
            .ensure_account(service_id, &token, Some("db-uuid"))
            .map_err(|e| format!("ensure_account: {e}"))
    }

    /// Runs one SQL statement on a connection of its own, outside the store.
    pub fn raw_execute(&self, sql: &str) -> Result<usize, String> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
                diesel::sql_query(sql)
                    .execute(&mut c)
                    .map_err(|e| e.to_string())
            }
            Target::Postgres(url) => {
                let mut c = PgConnection::establish(url).map_err(|e| e.to_string())?;
                diesel::sql_query(sql)
                    .execute(&mut c)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// One BIGINT column named `v`.
#[derive(QueryableByName)]
struct RawI64 {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    v: i64,
}

impl TestDb {
    /// Runs one query answering a single BIGINT column `v`, on a connection of its own.
    pub fn raw_i64(&self, sql: &str) -> Result<i64, String> {
        let row: RawI64 = match &self.target {
            Target::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
                diesel::sql_query(sql).get_result(&mut c)
            }
            Target::Postgres(url) => {
                let mut c = PgConnection::establish(url).map_err(|e| e.to_string())?;
                diesel::sql_query(sql).get_result(&mut c)
            }
        }
        .map_err(|e| format!("{sql}: {e}"))?;
        Ok(row.v)
    }
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// An amount in units (1/10000 credit).
pub fn units(u: i64) -> Credits {
    Credits::from_units(u).expect("amount in range")
}

/// An amount in whole credits.
pub fn credits(c: i64) -> Credits {
    Credits::whole(c).expect("amount in range")
}

/// Balance figures in units, easy to compare and print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    pub balance: i64,
    pub reserved: i64,
    pub available: i64,
}

impl Figures {
    pub fn new(balance: i64, reserved: i64) -> Figures {
        Figures {
            balance,
            reserved,
            available: balance - reserved,
        }
    }
}

impl From<Balance> for Figures {
    fn from(b: Balance) -> Figures {
        Figures {
            balance: b.balance.units(),
            reserved: b.reserved.units(),
            available: b.available.units(),
        }
    }
}

/// The kind of a ledger refusal, with the figures that matter for comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrKind {
    Insufficient {
        needed: i64,
        available: i64,
    },
    UnknownHold,
    HoldClosed(HoldStatus),
    HoldExpired,
    InvalidExpiry,
    IdempotencyMismatch,
    /// Anything a test does not expect (storage errors included), as text.
    Other(String),
}

impl From<&LedgerError> for ErrKind {
    fn from(e: &LedgerError) -> ErrKind {
        match e {
            LedgerError::InsufficientCredit { needed, available } => ErrKind::Insufficient {
                needed: needed.units(),
                available: available.units(),
            },
            LedgerError::UnknownHold => ErrKind::UnknownHold,
            LedgerError::HoldClosed { status } => ErrKind::HoldClosed(*status),
            LedgerError::HoldExpired => ErrKind::HoldExpired,
            LedgerError::InvalidExpiry(_) => ErrKind::InvalidExpiry,
            LedgerError::IdempotencyMismatch => ErrKind::IdempotencyMismatch,
            other => ErrKind::Other(format!("{other:?}")),
        }
    }
}

/// Fails with the audit's broken invariants, if any.
pub fn audit_clean(store: &Store, account_id: AccountId) -> Result<(), String> {
    let audit = store
        .audit(account_id)
        .map_err(|e| format!("audit({account_id}): {e}"))?;
    let broken = audit.violations();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "account {account_id}: ledger invariants broken: {broken:?} ({audit:?})"
        ))
    }
}

/// A small deterministic generator (SplitMix64) for the concurrency threads.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// A seed from `IAP_SIDECAR_TEST_SEED` or the OS generator.
pub fn seed() -> u64 {
    std::env::var("IAP_SIDECAR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from_str_radix(&random_hex(8), 16).expect("hex seed"))
}
