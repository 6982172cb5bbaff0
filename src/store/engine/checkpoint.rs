//! SQLite: copying the WAL back into the database file on a thread of its own.
//!
//! A checkpoint that runs beside the engine never reaches the end of the WAL, since the
//! engine keeps appending; SQLite only starts a WAL again from its head (and only flushes
//! the database file) after a checkpoint that did. Left so, the WAL grows until
//! `wal_autocheckpoint` makes every commit run one on the engine's thread, and the one
//! that reaches the end flushes every page copied since the last. So each round copies
//! and flushes beside the engine first, then holds the writer for the little committed
//! meanwhile: the engine waits for a few pages instead of thousands.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};

use diesel::r2d2::ConnectionManager;
use diesel::sql_types::{Integer, Text};
use diesel::{RunQueryDsl, SqliteConnection};

use super::Counters;

type SqlitePool = r2d2::Pool<ConnectionManager<SqliteConnection>>;

/// Passes beside the engine before the one that holds the writer: each copies what the
/// engine committed during the one before, a few milliseconds' worth.
const PASSES_BESIDE: usize = 2;

/// Starts the thread; a message on the returned channel asks for one round.
pub(super) fn start(
    pool: SqlitePool,
    writer: Arc<Mutex<()>>,
    counters: Arc<Counters>,
) -> Option<SyncSender<()>> {
    let (due, wake) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut file = DatabaseFile::Unknown;
            while wake.recv().is_ok() {
                match round(&pool, &writer, &mut file) {
                    Ok(Some(to_end)) => {
                        // Short first: a reader of both never sees more short than run.
                        if !to_end {
                            counters.checkpoints_short.fetch_add(1, Ordering::Relaxed);
                        }
                        counters.checkpoints.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
                }
            }
        })
        .ok()
        .map(|_| due)
}

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Of those, copied into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// The database file, once known.
enum DatabaseFile {
    Unknown,
    /// A database in memory: nothing to copy to.
    None,
    Open(File),
}

#[derive(diesel::QueryableByName)]
struct MainFile {
    #[diesel(sql_type = Text)]
    file: String,
}

/// One round; whether it copied the WAL to its end (`None`: nothing to copy to).
fn round(
    pool: &SqlitePool,
    writer: &Mutex<()>,
    file: &mut DatabaseFile,
) -> Result<Option<bool>, String> {
    let mut c = pool.get().map_err(|e| e.to_string())?;
    if let DatabaseFile::Unknown = file {
        *file = database_file(&mut c)?;
    }
    let DatabaseFile::Open(file) = file else {
        return Ok(None);
    };
    for _ in 0..PASSES_BESIDE {
        pass(&mut c)?;
        // SQLite flushes the database file only after a pass that reached the end of
        // the WAL; flushing here keeps that last flush, made with the writer held, short.
        file.sync_data()
            .map_err(|e| format!("flushing the database file: {e}"))?;
    }
    let _writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
    let last = pass(&mut c)?;
    Ok(Some(last.checkpointed == last.log))
}

fn pass(c: &mut SqliteConnection) -> Result<Checkpointed, String> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .get_result(c)
        .map_err(|e| e.to_string())
}

/// The main database's file, opened for flushing.
fn database_file(c: &mut SqliteConnection) -> Result<DatabaseFile, String> {
    let main: Vec<MainFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .load(c)
            .map_err(|e| e.to_string())?;
    match main.into_iter().next() {
        Some(m) if !m.file.is_empty() => File::open(&m.file)
            .map(DatabaseFile::Open)
            .map_err(|e| format!("opening {}: {e}", m.file)),
        _ => Ok(DatabaseFile::None),
    }
}
