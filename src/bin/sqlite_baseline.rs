//! `sqlite_baseline`: what SQLite itself can commit durably on this machine, as the
//! yardstick for the sidecar's SQLite backend. Each transaction is the least a charge
//! could be: `BEGIN IMMEDIATE; UPDATE one account's balance; INSERT one journal row;
//! COMMIT`, in WAL mode with `synchronous = FULL` (the sidecar's default), from `--threads`
//! threads with a connection each (1 = a plain loop), for `--duration` seconds.
//!
//! ```text
//! sqlite_baseline --path target/bench/baseline.db --threads 32 --duration 10
//! ```

#[path = "loadgen/hist.rs"]
mod hist;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde_json::json;

use hist::{Hist, round3};

diesel::table! {
    bench_accounts (id) {
        id -> BigInt,
        balance -> BigInt,
    }
}

diesel::table! {
    bench_journal (id) {
        id -> BigInt,
        account_id -> BigInt,
        amount -> BigInt,
        balance_after -> BigInt,
        created_at -> BigInt,
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "sqlite_baseline",
    about = "Raw SQLite durable commits per second (one UPDATE + one INSERT per commit)"
)]
struct Args {
    /// Database file; it and its -wal/-shm files are replaced.
    #[arg(long, default_value = "sqlite-baseline.db")]
    path: PathBuf,
    /// Writer threads, one connection each (1: a single loop).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Measured seconds (at most 600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of commits before measuring (at most 60).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Accounts the updates spread over, uniformly (1: every commit on one row).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// `synchronous` pragma: full (durable commits, the default) or normal.
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    synchronous: String,
    /// Writers wait this long for the lock before giving up (as the sidecar's
    /// `database.sqlite_busy_timeout_ms`).
    #[arg(long, default_value_t = 5000)]
    busy_timeout_ms: u32,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

fn open(args: &Args) -> Result<SqliteConnection, String> {
    let path = args.path.to_str().ok_or("--path must be UTF-8")?;
    let mut conn = SqliteConnection::establish(path).map_err(|e| format!("{path}: {e}"))?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {};",
        args.busy_timeout_ms, args.synchronous
    ))
    .map_err(|e| format!("pragmas: {e}"))?;
    Ok(conn)
}

fn prepare(args: &Args) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = args.path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", PathBuf::from(p).display())),
        }
    }
    let mut conn = open(args)?;
    conn.batch_execute(
        "CREATE TABLE bench_accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE bench_journal (
             id INTEGER PRIMARY KEY,
             account_id INTEGER NOT NULL REFERENCES bench_accounts (id),
             amount INTEGER NOT NULL,
             balance_after INTEGER NOT NULL,
             created_at INTEGER NOT NULL);
         CREATE INDEX bench_journal_account ON bench_journal (account_id);",
    )
    .map_err(|e| format!("schema: {e}"))?;
    conn.immediate_transaction(|c| {
        for id in 1..=i64::from(args.accounts) {
            diesel::insert_into(bench_accounts::table)
                .values((
                    bench_accounts::id.eq(id),
                    bench_accounts::balance.eq(1_000_000_000_000i64),
                ))
                .execute(c)?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .map_err(|e| format!("accounts: {e}"))?;
    Ok(())
}

/// One durable transaction: the account's new balance, and its journal row.
fn commit(conn: &mut SqliteConnection, account: i64) -> QueryResult<()> {
    conn.immediate_transaction(|c| {
        let balance: i64 = diesel::update(bench_accounts::table.find(account))
            .set(bench_accounts::balance.eq(bench_accounts::balance - 1))
            .returning(bench_accounts::balance)
            .get_result(c)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        diesel::insert_into(bench_journal::table)
            .values((
                bench_journal::account_id.eq(account),
                bench_journal::amount.eq(-1i64),
                bench_journal::balance_after.eq(balance),
                bench_journal::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}

struct Window {
    measure_start: Instant,
    end: Instant,
}

fn writer(
    args: Arc<Args>,
    window: Arc<Window>,
    seed: u64,
    errors: Arc<AtomicU64>,
) -> Result<Hist, String> {
    let mut conn = open(&args)?;
    let mut state = seed;
    let mut hist = Hist::default();
    loop {
        let t0 = Instant::now();
        if t0 >= window.end {
            return Ok(hist);
        }
        // SplitMix64 step.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let account = ((z ^ (z >> 31)) % u64::from(args.accounts)) as i64 + 1;
        let outcome = commit(&mut conn, account);
        let t1 = Instant::now();
        if t1 < window.measure_start || t1 > window.end {
            continue;
        }
        match outcome {
            Ok(()) => hist.record(t1 - t0),
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite_baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 600.0) {
        return Err("--duration must be more than 0 and at most 600 seconds".into());
    }
    if !(args.warmup.is_finite() && (0.0..=60.0).contains(&args.warmup)) {
        return Err("--warmup must be 0 to 60 seconds".into());
    }
    prepare(&args)?;
    let args = Arc::new(args);
    let start = Instant::now();
    let window = Arc::new(Window {
        measure_start: start + Duration::from_secs_f64(args.warmup),
        end: start + Duration::from_secs_f64(args.warmup + args.duration),
    });
    let errors = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..args.threads)
        .map(|i| {
            let (args, window, errors) = (args.clone(), window.clone(), errors.clone());
            let seed = u64::from(i) * 0x1000_0000_01B3 + 0xCBF2_9CE4_8422_2325;
            std::thread::spawn(move || writer(args, window, seed, errors))
        })
        .collect();
    let mut hist = Hist::default();
    for t in threads {
        hist.merge(&t.join().map_err(|_| "a writer thread panicked")??);
    }
    let errors = errors.load(Ordering::Relaxed);
    let per_sec = (hist.count() as f64 / args.duration * 10.0).round() / 10.0;
    if args.json {
        let report = json!({
            "config": {
                "threads": args.threads,
                "duration_secs": args.duration,
                "warmup_secs": args.warmup,
                "accounts": args.accounts,
                "synchronous": args.synchronous,
                "path": args.path.display().to_string(),
            },
            "commits": hist.count(),
            "commits_per_sec": per_sec,
            "errors": errors,
            "latency_ms": hist.summary_json(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON report")
        );
    } else {
        println!(
            "sqlite_baseline: {} thread(s), {} accounts, WAL, synchronous={}: {} commits in {:.1} s → {per_sec} commits/s, {errors} errors",
            args.threads,
            args.accounts,
            args.synchronous,
            hist.count(),
            args.duration
        );
        println!(
            "  commit latency ms: mean {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}",
            round3(hist.mean_micros() / 1000.0),
            hist.quantile_micros(0.5) as f64 / 1000.0,
            hist.quantile_micros(0.99) as f64 / 1000.0,
            hist.max_micros() as f64 / 1000.0
        );
    }
    if hist.count() == 0 {
        return Err("no commit succeeded".into());
    }
    Ok(())
}
