//! Storage: the only place that knows SQL. One binary serves SQLite and PostgreSQL,
//! chosen by the URL scheme; each operation runs in one transaction on one account.

mod accounts;
mod admin_tokens;
mod alert_outbox;
mod audit;
pub mod backup;
mod console_sessions;
mod databases;
mod idempotency_keys;
mod journal;
mod ledger_ops;
mod orders;
mod overview;
mod packs;
mod portal_sessions;
mod registration_secrets;
mod services;
mod statement;
mod trials;

mod connection;
mod engine;
pub(crate) mod error;
mod ledger_repo;
mod lookups;
mod rows;
pub mod schema;
pub mod sms;

use std::sync::Arc;

use diesel::prelude::*;

pub use crate::ledger::Audit;
pub use crate::ledger::NewService;
pub use crate::payments::orders::MAX_PENDING_ORDERS;
pub use crate::telemetry::PoolState;
pub use accounts::AccountFilter;
pub use accounts::AlertUpdate;
pub use admin_tokens::AdminToken;
pub use admin_tokens::AdminTokenId;
pub use admin_tokens::AdminTokenInfo;
pub use alert_outbox::{AlertFilter, AlertId, AlertJob, AlertStatus};
pub use audit::{AuditLine, AuditLineId, AuditRecord, AuditWith};
pub use connection::Backend;
pub use console_sessions::ConsoleSession;
pub use databases::{CompanyConsumption, DatabaseInfo, OdooCredentials, already_registered};
pub use engine::EngineStats;
pub use idempotency_keys::Idempotency;
pub use journal::DatabaseUsage;
pub use ledger_ops::GrantRequest;
pub use orders::OrderFilter;
pub use overview::{Overview, Totals};
pub use registration_secrets::{RegistrationSecretInfo, Revocation};
pub use statement::{Statement, StatementRequest};

use crate::config::DatabaseSettings;
use crate::ledger::{LedgerError, Timestamp};
use connection::Pool;

/// Supplies "now"; tests replace it to move time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Shared handle to the database (cheap to clone).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    engine: engine::Engine,
    lookups: Arc<lookups::Lookups>,
    clock: Clock,
    max_hold_ttl_hours: i64,
    /// `database.health_timeout_ms`.
    health_timeout: std::time::Duration,
    /// `database.sqlite_busy_timeout_ms`, restored after the health probe.
    sqlite_busy_timeout_ms: u32,
    /// How long after a day's end the overview treats it as closed (see
    /// [`Store::rollup_margin`]), in microseconds.
    rollup_margin_micros: i64,
}

/// Runs `$body` with `$c` bound to a connection inside a write transaction:
/// `BEGIN IMMEDIATE` on SQLite (one writer at a time), a plain transaction on PostgreSQL
/// (writers of one account queue on its row lock).
macro_rules! write_tx {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            crate::store::connection::Pool::Sqlite(p, writer) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let conn: &mut diesel::SqliteConnection = &mut pooled;
                // A panic while writing only poisons the queue, not the data (the
                // transaction rolled back): keep going.
                let _writer = writer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                conn.immediate_transaction(|$c| $body)
            }
            crate::store::connection::Pool::Pg(p) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let conn: &mut diesel::PgConnection = &mut pooled;
                conn.transaction(|$c| $body)
            }
        }
    };
}

/// Runs `$body` inside a read-only transaction that sees one consistent snapshot.
macro_rules! read_tx {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            crate::store::connection::Pool::Sqlite(p, _) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let conn: &mut diesel::SqliteConnection = &mut pooled;
                conn.transaction(|$c| $body)
            }
            crate::store::connection::Pool::Pg(p) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let conn: &mut diesel::PgConnection = &mut pooled;
                conn.build_transaction()
                    .read_only()
                    .repeatable_read()
                    .run(|$c| $body)
            }
        }
    };
}

/// Runs `$body` on a pooled connection outside any explicit transaction: for reads of a
/// single statement, which see one snapshot anyway (saves BEGIN and COMMIT round trips).
macro_rules! read_one {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            crate::store::connection::Pool::Sqlite(p, _) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let $c: &mut diesel::SqliteConnection = &mut pooled;
                $body
            }
            crate::store::connection::Pool::Pg(p) => {
                let mut pooled = p.get().map_err(crate::store::unavailable)?;
                let $c: &mut diesel::PgConnection = &mut pooled;
                $body
            }
        }
    };
}

pub(crate) use {read_one, read_tx, write_tx};

pub(crate) fn unavailable(e: r2d2::Error) -> crate::ledger::StorageError {
    error::unavailable(e)
}

impl Store {
    /// Opens the pool for `settings.url`; nothing is migrated yet.
    pub fn connect(settings: &DatabaseSettings) -> Result<Store, LedgerError> {
        let pool = Pool::open(settings)?;
        Ok(Store {
            engine: engine::Engine::start(
                pool.clone(),
                std::time::Duration::from_millis(settings.call_deadline_ms),
            )?,
            lookups: Arc::new(lookups::Lookups::new(std::time::Duration::from_millis(
                settings.lookup_cache_ms,
            ))),
            pool,
            clock: Arc::new(Timestamp::now),
            max_hold_ttl_hours: crate::config::LedgerSettings::default().max_hold_ttl_hours,
            health_timeout: std::time::Duration::from_millis(settings.health_timeout_ms.max(1)),
            sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
            rollup_margin_micros: i64::try_from(settings.call_deadline_ms)
                .unwrap_or(i64::MAX)
                .saturating_add(60_000)
                .saturating_mul(1_000),
        })
    }

    /// The same store with another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// The same store with another cap on hold lifetimes (`ledger.max_hold_ttl_hours`).
    pub fn with_max_hold_ttl_hours(mut self, hours: i64) -> Store {
        self.max_hold_ttl_hours = hours.max(1);
        self
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Applies pending migrations; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, LedgerError> {
        self.pool.migrate()
    }

    /// A round trip to the database.
    pub fn ping(&self) -> Result<(), LedgerError> {
        read_tx!(self, |c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            Ok::<_, LedgerError>(())
        })
    }

    /// Whether writes can go through now, within `database.health_timeout_ms`: the ledger
    /// engine's last batch did not fail for want of the database, a connection comes
    /// within the bound and, on SQLite, the write lock can be had within it (an outside
    /// writer holding it stalls every write). Blocks for at most about the bound.
    pub fn check_writable(&self) -> Result<(), LedgerError> {
        if self.engine.failing() {
            return Err(LedgerError::from(crate::ledger::StorageError::unavailable(
                "the ledger's last write failed",
            )));
        }
        let bound = self.health_timeout;
        match &self.pool {
            Pool::Sqlite(p, _) => {
                let mut conn = connection::checkout(p, bound)?;
                // A short busy wait of this connection's own; the pool's is restored after.
                let probe = diesel::sql_query(format!(
                    "PRAGMA busy_timeout = {}",
                    bound.as_millis().min(u32::MAX as u128)
                ))
                .execute(&mut *conn)
                .map_err(LedgerError::from)
                .and_then(|_| conn.immediate_transaction(|_| Ok::<_, LedgerError>(())));
                let restored = diesel::sql_query(format!(
                    "PRAGMA busy_timeout = {}",
                    self.sqlite_busy_timeout_ms
                ))
                .execute(&mut *conn);
                probe?;
                restored?;
                Ok(())
            }
            Pool::Pg(p) => {
                let mut conn = connection::checkout(p, bound)?;
                diesel::sql_query(format!(
                    "SET statement_timeout = {}",
                    bound.as_millis().min(i32::MAX as u128)
                ))
                .execute(&mut *conn)?;
                let probe = diesel::sql_query("SELECT 1").execute(&mut *conn);
                diesel::sql_query("RESET statement_timeout").execute(&mut *conn)?;
                probe?;
                Ok(())
            }
        }
    }

    /// How the ledger engine of this store has batched operations so far.
    pub fn engine_stats(&self) -> EngineStats {
        self.engine.stats()
    }

    /// `database.health_timeout_ms`.
    pub fn health_timeout(&self) -> std::time::Duration {
        self.health_timeout
    }

    pub fn pool_state(&self) -> PoolState {
        self.pool.state()
    }
}
