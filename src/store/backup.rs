//! Backups of the embedded SQLite database: an online, consistent copy taken while the
//! service serves, its checks, and putting one back. PostgreSQL has its own tools
//! (`pg_dump`, see docs/operations.md); these refuse it with that advice.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::Store;
use super::connection::Pool;
use crate::error::AppError;
use crate::ledger::StorageError;

const USE_PG_DUMP: &str = "this database is PostgreSQL: back it up with pg_dump and restore \
     it with pg_restore (see docs/operations.md)";

/// What a backup check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupCheck {
    pub accounts: i64,
    pub journal_lines: i64,
}

impl Store {
    /// Writes a consistent copy of the whole database to `path`, which must not exist.
    ///
    /// SQLite's `VACUUM INTO` reads everything in one read transaction: writers go on
    /// (WAL), and the copy holds exactly the transactions committed before it began —
    /// every charge answered before the call is in it. Answers the copy's size in bytes.
    pub fn backup_to(&self, path: &Path) -> Result<u64, AppError> {
        let target = path
            .to_str()
            .ok_or_else(|| AppError::Invalid("the backup path must be UTF-8".into()))?;
        if path.exists() {
            return Err(AppError::Invalid(format!(
                "{target} already exists: choose a new file"
            )));
        }
        match &self.pool {
            Pool::Sqlite(pool, _) => {
                let mut conn = pool.get().map_err(super::unavailable)?;
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<Text, _>(target)
                    .execute(&mut *conn)?;
            }
            Pool::Pg(_) => return Err(AppError::Invalid(USE_PG_DUMP.into())),
        }
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| AppError::from(StorageError::failed(format!("reading {target}: {e}"))))
    }
}

/// Checks a SQLite backup file without changing it: SQLite's integrity check, then the
/// ledger's own rules on every account (balance = Σ journal, reserved = Σ open holds,
/// nothing below zero).
pub fn check_sqlite_backup(path: &Path) -> Result<BackupCheck, AppError> {
    let target = path
        .to_str()
        .ok_or_else(|| AppError::Invalid("the backup path must be UTF-8".into()))?;
    if !path.is_file() {
        return Err(AppError::Invalid(format!("{target} is not a file")));
    }
    let mut c = SqliteConnection::establish(&format!("file:{target}?mode=ro"))
        .map_err(|e| AppError::Invalid(format!("{target} is not a SQLite database: {e}")))?;
    let integrity: String = diesel::select(sql::<Text>("(SELECT * FROM pragma_integrity_check)"))
        .get_result(&mut c)
        .map_err(|e| AppError::Invalid(format!("{target}: {e}")))?;
    if integrity != "ok" {
        return Err(AppError::Invalid(format!(
            "{target} is damaged: {integrity}"
        )));
    }
    let broken: i64 = diesel::select(sql::<BigInt>(
        "(SELECT COUNT(*) FROM accounts a WHERE \
           a.balance <> (SELECT COALESCE(SUM(j.amount), 0) FROM journal j WHERE j.account_id = a.id) \
           OR a.reserved <> (SELECT COALESCE(SUM(h.amount), 0) FROM holds h \
                             WHERE h.account_id = a.id AND h.status = 'open') \
           OR a.reserved < 0 OR a.balance < a.reserved)",
    ))
    .get_result(&mut c)
    .map_err(|e| AppError::Invalid(format!("{target} is not an iap-sidecar database: {e}")))?;
    if broken > 0 {
        return Err(AppError::Invalid(format!(
            "{target}: {broken} account(s) fail the ledger audit"
        )));
    }
    let accounts: i64 =
        diesel::select(sql::<BigInt>("(SELECT COUNT(*) FROM accounts)")).get_result(&mut c)?;
    let journal_lines: i64 =
        diesel::select(sql::<BigInt>("(SELECT COUNT(*) FROM journal)")).get_result(&mut c)?;
    Ok(BackupCheck {
        accounts,
        journal_lines,
    })
}

/// Puts a checked SQLite backup in place of the database file `database` (the service
/// must be stopped). The copy is written beside the target and renamed over it, so a
/// crash leaves either the old database or the restored one; the old WAL is removed
/// with it, since it belongs to the old file.
pub fn restore_sqlite_backup(backup: &Path, database: &Path) -> Result<BackupCheck, AppError> {
    let check = check_sqlite_backup(backup)?;
    let io = |what: &str, e: std::io::Error| {
        AppError::from(StorageError::failed(format!("{what}: {e}")))
    };
    let mut tmp = database.as_os_str().to_owned();
    tmp.push(".restoring");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::copy(backup, &tmp).map_err(|e| io("copying the backup", e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing the copy", e))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing the old WAL", e)),
        }
    }
    std::fs::rename(&tmp, database).map_err(|e| io("putting the copy in place", e))?;
    // The copy was made in rollback-journal mode; the service turns WAL on when it opens.
    let mut c = SqliteConnection::establish(
        database
            .to_str()
            .ok_or_else(|| AppError::Invalid("the database path must be UTF-8".into()))?,
    )
    .map_err(|e| {
        AppError::from(StorageError::failed(format!(
            "opening the restored database: {e}"
        )))
    })?;
    c.batch_execute("PRAGMA journal_mode = WAL;")?;
    Ok(check)
}

/// The refusal for PostgreSQL restores, with the advice.
pub fn restore_refused_on_postgres() -> AppError {
    AppError::Invalid(USE_PG_DUMP.into())
}
