//! Connection pools for the two backends and their migrations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseSettings;
use crate::ledger::LedgerError;
use crate::telemetry::PoolState;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises migrations of replicas starting together on one PostgreSQL database.
const MIGRATION_LOCK_KEY: i64 = 0x1a95_1dec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub(crate) enum Pool {
    /// SQLite has one writer at a time; writers of this process queue on the mutex, which
    /// wakes the next one at once, instead of in SQLite's busy handler, which sleeps in
    /// growing steps and lets unlucky writers wait seconds (see docs/benchmarks.md).
    Sqlite(
        r2d2::Pool<ConnectionManager<SqliteConnection>>,
        Arc<Mutex<()>>,
    ),
    Pg(r2d2::Pool<ConnectionManager<PgConnection>>),
}

/// Per-connection SQLite settings (pragmas are per connection, except WAL).

#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u32,
    synchronous: String,
    wal_autocheckpoint: u32,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; \
             PRAGMA wal_autocheckpoint = {};",
            self.busy_timeout_ms, self.synchronous, self.wal_autocheckpoint
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pooled connection within `wait` (and never longer than the pool's own timeout):
/// a caller with a deadline must not queue for a connection past it.
pub(crate) fn checkout<M: r2d2::ManageConnection>(
    pool: &r2d2::Pool<M>,
    wait: Duration,
) -> Result<r2d2::PooledConnection<M>, LedgerError> {
    pool.get_timeout(
        wait.min(pool.connection_timeout())
            .max(Duration::from_millis(1)),
    )
    .map_err(|e| super::unavailable(e).into())
}

/// libpq connection settings that bound how long a dead PostgreSQL connection (its server
/// gone, the network path cut, a half-open TCP connection) can hold a caller, each added
/// to `url` only when the operator's URL does not set it (the URL's own values win;
/// README, "PostgreSQL"). libpq's defaults bound nothing:
///
/// - `connect_timeout` = `database.pool_timeout_secs` (libpq counts at least 2 s): no
///   connection is worth waiting for longer than a caller waits for a pooled one; libpq
///   waits as long as the operating system keeps trying (minutes) by default.
/// - `keepalives_idle` / `keepalives_interval` / `keepalives_count` = 5 s / 5 s / 3: a
///   connection waiting for an answer (the server received the statement, or the COMMIT)
///   or idle in the pool is probed after 5 s of silence instead of the system's 2 hours.
/// - `tcp_user_timeout` = `database.call_deadline_ms`: data sent (a batch, its COMMIT)
///   or probes left unacknowledged that long close the connection, instead of the
///   system's retransmissions for about 15 minutes. It only fires when the server's host
///   does not answer at the TCP level: a long query or a lock wait is not cut.
///
/// The failed statement is then answered "unavailable" and the pool drops the connection.
fn pg_url_with_bounds(url: &str, settings: &DatabaseSettings) -> String {
    let defaults = [
        (
            "connect_timeout",
            settings.pool_timeout_secs.max(2).to_string(),
        ),
        ("keepalives_idle", "5".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
        ("tcp_user_timeout", settings.call_deadline_ms.to_string()),
    ];
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let given: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key))
        .collect();
    let mut out = url.to_owned();
    let mut separator = if url.contains('?') {
        if query.is_empty() || query.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (key, value) in defaults {
        if !given.contains(&key) {
            out.push_str(separator);
            out.push_str(key);
            out.push('=');
            out.push_str(&value);
            separator = "&";
        }
    }
    out
}

fn store_error(context: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::from(crate::ledger::StorageError::failed(format!(
        "{context}: {e}"
    )))
}

impl Pool {
    pub(crate) fn open(settings: &DatabaseSettings) -> Result<Pool, LedgerError> {
        let url = settings.url.expose();
        let timeout = Duration::from_secs(settings.pool_timeout_secs.max(1));
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(store_error("database.url", "sqlite:// needs a file path"));
            }
            // WAL is a property of the file: set it once, before the pool opens.
            let mut first = SqliteConnection::establish(path)
                .map_err(|e| store_error(&format!("opening SQLite file {path}"), e))?;
            first
                .batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
                    settings.sqlite_busy_timeout_ms
                ))
                .map_err(|e| store_error("enabling WAL", e))?;
            let pool = r2d2::Pool::builder()
                .max_size(settings.pool_size)
                .connection_timeout(timeout)
                // A broken connection fails its query and is then dropped by the pool:
                // no `SELECT 1` round trip before every use.
                .test_on_check_out(false)
                .connection_customizer(Box::new(SqlitePragmas {
                    busy_timeout_ms: settings.sqlite_busy_timeout_ms,
                    synchronous: settings.sqlite_synchronous.clone(),
                    wal_autocheckpoint: settings.sqlite_wal_autocheckpoint,
                }))
                .build(ConnectionManager::new(path))
                .map_err(|e| store_error("SQLite pool", e))?;
            Ok(Pool::Sqlite(pool, Arc::new(Mutex::new(()))))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = r2d2::Pool::builder()
                .max_size(settings.pool_size)
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build(ConnectionManager::new(pg_url_with_bounds(url, settings)))
                .map_err(|e| {
                    store_error(
                        &format!(
                            "connecting to PostgreSQL at {}",
                            crate::config::redact_url(url)
                        ),
                        e,
                    )
                })?;
            Ok(Pool::Pg(pool))
        } else {
            Err(store_error(
                "database.url",
                "must start with sqlite:// or postgres://",
            ))
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(..) => Backend::Sqlite,
            Pool::Pg(_) => Backend::Postgres,
        }
    }

    pub(crate) fn state(&self) -> PoolState {
        let (state, max) = match self {
            Pool::Sqlite(p, _) => (p.state(), p.max_size()),
            Pool::Pg(p) => (p.state(), p.max_size()),
        };
        PoolState {
            connections: state.connections,
            idle: state.idle_connections,
            max,
        }
    }

    pub(crate) fn migrate(&self) -> Result<Vec<String>, LedgerError> {
        let applied = match self {
            Pool::Sqlite(p, _) => {
                let mut conn = p.get().map_err(super::unavailable)?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| store_error("migrating", e))?
                    .iter()
                    .map(|v| v.to_string())
                    .collect()
            }
            Pool::Pg(p) => {
                let mut conn = p.get().map_err(super::unavailable)?;
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(&mut conn)?;
                let result = conn
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                    .map_err(|e| store_error("migrating", e));
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(&mut conn)?;
                result?
            }
        };
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings() -> DatabaseSettings {
        DatabaseSettings {
            url: Secret::new("postgres://unused"),
            pool_timeout_secs: 7,
            call_deadline_ms: 9_000,
            ..DatabaseSettings::default()
        }
    }

    #[test]
    fn a_plain_url_gets_every_bound() {
        assert_eq!(
            pg_url_with_bounds("postgres://u:p@db.example.org/iap", &settings()),
            "postgres://u:p@db.example.org/iap?connect_timeout=7&keepalives_idle=5\
             &keepalives_interval=5&keepalives_count=3&tcp_user_timeout=9000"
        );
    }

    #[test]
    fn the_operators_values_win() {
        assert_eq!(
            pg_url_with_bounds(
                "postgres://db/iap?sslmode=require&connect_timeout=3&tcp_user_timeout=0",
                &settings()
            ),
            "postgres://db/iap?sslmode=require&connect_timeout=3&tcp_user_timeout=0\
             &keepalives_idle=5&keepalives_interval=5&keepalives_count=3"
        );
        // Every bound given: the URL is left as it is.
        let full = "postgresql://db/iap?connect_timeout=4&keepalives_idle=60\
                    &keepalives_interval=10&keepalives_count=6&tcp_user_timeout=30000";
        assert_eq!(pg_url_with_bounds(full, &settings()), full);
        // An empty query, or one ending in `&`.
        assert!(
            pg_url_with_bounds("postgres://db/iap?", &settings())
                .starts_with("postgres://db/iap?connect_timeout=7&")
        );
        assert!(
            pg_url_with_bounds("postgres://db/iap?sslmode=disable&", &settings())
                .starts_with("postgres://db/iap?sslmode=disable&connect_timeout=7&")
        );
    }

    #[test]
    fn libpq_counts_at_least_two_seconds_to_connect() {
        let s = DatabaseSettings {
            pool_timeout_secs: 1,
            ..settings()
        };
        assert!(pg_url_with_bounds("postgres://db/iap", &s).contains("connect_timeout=2&"));
    }
}
