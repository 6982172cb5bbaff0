//! `loadgen`: drives *charges* (authorize, then capture or cancel) against a running
//! iap-sidecar over real HTTP, as an Odoo IAP provider does, and reports charges per
//! second, latency percentiles per call and errors by `error.data.name`.
//!
//! ```text
//! KEY=$(loadgen setup --accounts 1000)          # database from IAP_SIDECAR__DATABASE__URL
//! loadgen run --url http://127.0.0.1:8070 --key "$KEY" --concurrency 32 --duration 15
//! ```
//!
//! Every virtual client keeps one HTTP/1.1 connection alive and runs one charge at a
//! time (a closed loop), or follows a fixed schedule with `--rate`. Runs are bounded in
//! time (`--duration` ≤ 1 h) and optionally in count (`--charges`), and only loopback
//! targets are accepted.

// A binary's root file resolves modules beside itself: point at src/bin/loadgen/.
#[path = "loadgen/client.rs"]
mod client;
#[path = "loadgen/hist.rs"]
mod hist;
#[path = "loadgen/procstat.rs"]
mod procstat;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tokio::time::Instant;

use client::{Conn, Target};
use hist::{Hist, round3};
use iap_sidecar::config::Settings;
use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{Credits, EntryKind, LedgerError, time::NEVER};
use iap_sidecar::store::{GrantRequest, NewService};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load generator for iap-sidecar: IAP charges (authorize + capture/cancel) over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register the service (or give it a new key if it exists) and grant credits to the
    /// accounts `<prefix>0..N-1`, directly in the sidecar's database (same configuration
    /// as `iap-sidecar`: --config, IAP_SIDECAR_CONFIG, IAP_SIDECAR__DATABASE__URL...).
    /// Prints the provider key on stdout.
    Setup(SetupArgs),
    /// Run charges against a running sidecar and report.
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct SetupArgs {
    /// The sidecar's TOML configuration file.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Technical name of the service the load uses.
    #[arg(long, default_value = "loadgen")]
    service: String,
    /// Number of accounts to credit (tokens <prefix>0 .. <prefix>N-1).
    #[arg(long, default_value_t = 1000)]
    accounts: u32,
    /// Credits granted to each account (added to what it has).
    #[arg(long, default_value = "1000000")]
    grant: Credits,
    /// Account token prefix.
    #[arg(long, default_value = "loadgen-")]
    token_prefix: String,
}

#[derive(Args, Clone, Debug)]
struct RunArgs {
    /// The sidecar's origin; must be a loopback address (127.0.0.0/8, ::1, localhost).
    #[arg(long, default_value = "http://127.0.0.1:8070")]
    url: String,
    /// The service's provider key (as printed by `setup` or `iap-sidecar service add`).
    #[arg(long, env = "LOADGEN_KEY", hide_env_values = true)]
    key: String,
    /// Virtual clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Measured seconds (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (at most 600).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Charges go to accounts <prefix>0..N-1, uniformly at random.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Every charge goes to one account (<prefix>0): the single-row hot spot.
    #[arg(long, conflicts_with = "accounts")]
    hot: bool,
    /// Fraction of charges that cancel their hold instead of capturing it.
    #[arg(long, default_value_t = 0.0)]
    cancel_ratio: f64,
    /// Credits per charge (sent as a JSON number, like Odoo does).
    #[arg(long, default_value_t = 1.0)]
    credit: f64,
    /// Start charges on a fixed schedule of this many per second in total (open loop
    /// over the clients); without it each client starts its next charge at once.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many measured charges (the duration still bounds the run).
    #[arg(long)]
    charges: Option<u64>,
    /// Hold lifetime sent as `ttl`, in hours (holds left open by a failure expire then).
    #[arg(long, default_value_t = 1)]
    ttl: i64,
    /// `dbuuid` sent with authorize (none by default).
    #[arg(long)]
    dbuuid: Option<String>,
    /// Account token prefix.
    #[arg(long, default_value = "loadgen-")]
    token_prefix: String,
    /// Runtime threads of the load generator itself.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// PID of the sidecar (on this machine): report its resident memory and CPU use.
    #[arg(long)]
    pid: Option<u32>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// SplitMix64: a small, fast generator for account choice, cancel draws and request ids.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit_interval(state: &mut u64) -> f64 {
    (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64
}

fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).expect("operating system random generator");
    u64::from_le_bytes(buf)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Setup(args) => setup(args),
        Command::Run(args) => run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------- setup

/// Refuses a PostgreSQL URL whose host is not this machine.
fn check_database_local(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Ok(()); // sqlite://PATH: a local file
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a.split('/').next().unwrap_or(""), q),
        None => (rest.split('/').next().unwrap_or(""), ""),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if let Some(h) = query.split('&').find_map(|kv| kv.strip_prefix("host=")) {
        host = h;
    }
    if host.is_empty() || host.starts_with('/') || host.starts_with("%2F") {
        return Ok(()); // Unix socket
    }
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&(host, 5432))
        .map_err(|e| format!("database host {host:?}: {e}"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().to_canonical().is_loopback()) {
        return Err(format!(
            "database host {host:?} is not a loopback address; loadgen only works on this machine"
        ));
    }
    Ok(())
}

fn setup(args: SetupArgs) -> Result<ExitCode, String> {
    let settings = Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    check_database_local(settings.database.url.expose())?;
    let store = iap_sidecar::app::open_store(&settings).map_err(|e| format!("database: {e}"))?;
    let (service, key) = match store.service_by_name(&args.service) {
        Ok(_) => iap_sidecar::usecase::service_keys::rotate(&store, &args.service),
        Err(LedgerError::UnknownService(_)) => iap_sidecar::usecase::service_keys::create(
            &store,
            &NewService {
                technical_name: args.service.clone(),
                label: format!("{} (load generator)", args.service),
                unit_name: "Credits".into(),
                integer_balance: false,
                trial_credits: Credits::ZERO,
                trial_days: 0,
            },
        ),
        Err(e) => Err(e.into()),
    }
    .map_err(|e| format!("service {:?}: {e}", args.service))?;
    let started = std::time::Instant::now();
    for i in 0..args.accounts {
        let raw = format!("{}{i}", args.token_prefix);
        let token = AccountToken::from_raw(&raw)
            .ok_or_else(|| format!("account token {raw:?} must be 1-128 characters"))?;
        let account = store
            .ensure_account(service.id, &token, None)
            .map_err(|e| format!("account {raw}: {e}"))?;
        store
            .grant(&GrantRequest {
                account_id: account.id,
                amount: args.grant,
                expires_at: NEVER,
                origin: EntryKind::Grant,
                reference: None,
                description: Some("loadgen setup"),
            })
            .map_err(|e| format!("grant to {raw}: {e}"))?;
        if (i + 1) % 250 == 0 {
            eprintln!("loadgen setup: {} accounts credited", i + 1);
        }
    }
    eprintln!(
        "loadgen setup: service {} ready, {} accounts ({}0..{}{}) got {} credits each, in {:.1} s",
        service.technical_name,
        args.accounts,
        args.token_prefix,
        args.token_prefix,
        args.accounts.saturating_sub(1),
        args.grant,
        started.elapsed().as_secs_f64()
    );
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------ run

const AUTHORIZE: &str = "/iap/1/authorize";
const CAPTURE: &str = "/iap/1/capture";
const CANCEL: &str = "/iap/1/cancel";

/// What one virtual client saw in the measured window.
#[derive(Default)]
struct Stats {
    authorize: Hist,
    capture: Hist,
    cancel: Hist,
    charge: Hist,
    /// How late scheduled charges started (`--rate` only).
    lag: Hist,
    captured: u64,
    cancelled: u64,
    /// Charges that succeeded / failed at any time, warm-up included (for per-charge
    /// database counters read around the whole run).
    all_ok: u64,
    all_failed: u64,
    /// (call, error name) → count.
    errors: BTreeMap<(&'static str, String), u64>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.authorize.merge(&o.authorize);
        self.capture.merge(&o.capture);
        self.cancel.merge(&o.cancel);
        self.charge.merge(&o.charge);
        self.lag.merge(&o.lag);
        self.captured += o.captured;
        self.cancelled += o.cancelled;
        self.all_ok += o.all_ok;
        self.all_failed += o.all_failed;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

struct Plan {
    args: RunArgs,
    /// When the load starts, measuring starts, and the run ends.
    start: Instant,
    measure_start: Instant,
    end: Instant,
    tickets: AtomicU64,
    measured: AtomicU64,
    stop: AtomicBool,
    /// Nanoseconds after `measure_start` at which `--charges` was reached.
    stopped_at_nanos: AtomicU64,
}

impl Plan {
    fn measured(&self, t: Instant) -> bool {
        t >= self.measure_start && t <= self.end
    }

    fn authorize_params(&self, account: u64) -> Value {
        let a = &self.args;
        let mut params = json!({
            "account_token": format!("{}{account}", a.token_prefix),
            "credit": a.credit,
            "key": a.key,
            "description": "loadgen charge",
            "ttl": a.ttl,
        });
        if let Some(db) = &a.dbuuid {
            params["dbuuid"] = json!(db);
        }
        params
    }
}

/// One virtual client: charges one after another until the plan says stop.
async fn client_loop(plan: Arc<Plan>, target: Target, seed: u64) -> Stats {
    let mut rng = seed;
    let mut conn = Conn::new(target, splitmix(&mut rng));
    let mut stats = Stats::default();
    let args = &plan.args;
    loop {
        if plan.stop.load(Ordering::Relaxed) || Instant::now() >= plan.end {
            break;
        }
        if let Some(rate) = args.rate {
            let ticket = plan.tickets.fetch_add(1, Ordering::Relaxed);
            let due = plan.start + Duration::from_secs_f64(ticket as f64 / rate);
            if due >= plan.end {
                break;
            }
            tokio::time::sleep_until(due).await;
            let now = Instant::now();
            if plan.measured(now) {
                stats.lag.record(now - due);
            }
        }
        let account = if args.hot {
            0
        } else {
            splitmix(&mut rng) % u64::from(args.accounts)
        };
        let cancel = args.cancel_ratio > 0.0 && unit_interval(&mut rng) < args.cancel_ratio;

        let t0 = Instant::now();
        let authorized = conn.call(AUTHORIZE, plan.authorize_params(account)).await;
        let t1 = Instant::now();
        let token = match authorized {
            Ok(Value::String(token)) => token,
            Ok(_) => {
                stats.all_failed += 1;
                if plan.measured(t1) {
                    *stats
                        .errors
                        .entry(("authorize", "unexpected result".into()))
                        .or_default() += 1;
                }
                continue;
            }
            Err(e) => {
                stats.all_failed += 1;
                if plan.measured(t1) {
                    *stats.errors.entry(("authorize", e.name)).or_default() += 1;
                }
                if e.broken {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        };
        if plan.measured(t1) {
            stats.authorize.record(t1 - t0);
        }
        let (call, route, params) = if cancel {
            ("cancel", CANCEL, json!({"token": token, "key": args.key}))
        } else {
            (
                "capture",
                CAPTURE,
                json!({"token": token, "key": args.key, "credit_to_capture": args.credit}),
            )
        };
        let closed = conn.call(route, params).await;
        let t2 = Instant::now();
        let in_window = plan.measured(t2);
        match closed {
            Ok(Value::Bool(true)) => {
                stats.all_ok += 1;
                if !in_window {
                    continue;
                }
                if cancel {
                    stats.cancel.record(t2 - t1);
                    stats.cancelled += 1;
                } else {
                    stats.capture.record(t2 - t1);
                    stats.captured += 1;
                }
                stats.charge.record(t2 - t0);
                let n = plan.measured.fetch_add(1, Ordering::Relaxed) + 1;
                if args.charges.is_some_and(|max| n >= max)
                    && !plan.stop.swap(true, Ordering::Relaxed)
                {
                    let nanos = (t2 - plan.measure_start).as_nanos();
                    plan.stopped_at_nanos
                        .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
                }
            }
            Ok(_) => {
                stats.all_failed += 1;
                if in_window {
                    *stats
                        .errors
                        .entry((call, "unexpected result".into()))
                        .or_default() += 1;
                }
            }
            Err(e) => {
                stats.all_failed += 1;
                if in_window {
                    *stats.errors.entry((call, e.name)).or_default() += 1;
                }
                if e.broken {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    stats
}

fn validate(a: &RunArgs) -> Result<(), String> {
    let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(msg.to_owned()) };
    check(
        a.duration.is_finite() && a.duration > 0.0 && a.duration <= 3600.0,
        "--duration must be more than 0 and at most 3600 seconds",
    )?;
    check(
        a.warmup.is_finite() && (0.0..=600.0).contains(&a.warmup),
        "--warmup must be 0 to 600 seconds",
    )?;
    check(
        (0.0..=1.0).contains(&a.cancel_ratio),
        "--cancel-ratio must be between 0 and 1",
    )?;
    check(
        a.credit.is_finite() && a.credit > 0.0 && a.credit <= 1e12,
        "--credit must be more than 0 and at most 10^12",
    )?;
    check(
        a.rate.is_none_or(|r| r.is_finite() && r > 0.0 && r <= 1e6),
        "--rate must be more than 0 and at most 10^6 per second",
    )?;
    check(
        a.charges.is_none_or(|c| c > 0),
        "--charges must be at least 1",
    )?;
    check(a.ttl >= 1, "--ttl must be at least 1 hour")?;
    if let Some(pid) = a.pid {
        check(
            procstat::memory(pid).is_some(),
            "--pid: no such process on this machine (/proc/PID/status unreadable)",
        )?;
    }
    Ok(())
}

/// What the sampler saw of the sidecar and the machine during the measured window.
#[derive(Default)]
struct Observed {
    before: procstat::CpuSample,
    after: procstat::CpuSample,
    memory: Option<procstat::Memory>,
}

fn run(args: RunArgs) -> Result<ExitCode, String> {
    validate(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> Result<ExitCode, String> {
    let target = Target::resolve(&args.url).await?;
    let seed = random_seed();

    // One probe charge (authorize + cancel) so that a wrong key or URL fails loudly.
    let mut probe = Conn::new(target.clone(), seed);
    let probe_params = json!({
        "account_token": format!("{}0", args.token_prefix),
        "credit": args.credit,
        "key": args.key,
        "description": "loadgen probe",
        "ttl": args.ttl,
    });
    match probe.call(AUTHORIZE, probe_params).await {
        Ok(Value::String(token)) => {
            probe
                .call(CANCEL, json!({"token": token, "key": args.key}))
                .await
                .map_err(|e| format!("probe cancel failed: {}", e.name))?;
        }
        Ok(other) => return Err(format!("probe authorize answered {other}")),
        Err(e) => {
            return Err(format!(
                "probe authorize on {} failed: {}",
                args.url, e.name
            ));
        }
    }
    drop(probe);

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    let plan = Arc::new(Plan {
        args: args.clone(),
        start,
        measure_start,
        end,
        tickets: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stopped_at_nanos: AtomicU64::new(u64::MAX),
    });

    let sampler = {
        let plan = plan.clone();
        tokio::spawn(async move {
            let mut seen = Observed::default();
            tokio::time::sleep_until(plan.measure_start).await;
            seen.before = procstat::CpuSample::take(plan.args.pid);
            while Instant::now() < plan.end && !plan.stop.load(Ordering::Relaxed) {
                let left = plan.end.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(50))).await;
            }
            seen.after = procstat::CpuSample::take(plan.args.pid);
            seen.memory = plan.args.pid.and_then(procstat::memory);
            seen
        })
    };

    let mut seeder = seed ^ 0x5DEE_CE66;
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            tokio::spawn(client_loop(
                plan.clone(),
                target.clone(),
                splitmix(&mut seeder),
            ))
        })
        .collect();
    let mut stats = Stats::default();
    for c in clients {
        stats.merge(c.await.map_err(|e| format!("client task: {e}"))?);
    }
    let observed = sampler.await.map_err(|e| format!("sampler task: {e}"))?;

    let stopped = plan.stopped_at_nanos.load(Ordering::Relaxed);
    let elapsed = if stopped == u64::MAX {
        args.duration
    } else {
        Duration::from_nanos(stopped).as_secs_f64()
    }
    .max(1e-3);
    let report = report_json(&args, &stats, &observed, elapsed);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON report")
        );
    } else {
        print_table(&args, &stats, &report);
    }
    Ok(if stats.charge.count() == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report_json(args: &RunArgs, s: &Stats, seen: &Observed, elapsed: f64) -> Value {
    let ok = s.captured + s.cancelled;
    let cpu = |f: fn(&procstat::CpuSample) -> Option<f64>| match (f(&seen.before), f(&seen.after)) {
        (Some(a), Some(b)) => Some(round3((b - a) / elapsed)),
        _ => None,
    };
    let machine_busy = match (seen.before.machine, seen.after.machine) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            Some(((b1 - b0) / (t1 - t0) * 1000.0).round() / 10.0)
        }
        _ => None,
    };
    let sidecar_cores = cpu(|c| c.target);
    let mut latency = json!({
        "authorize": s.authorize.summary_json(),
        "capture": s.capture.summary_json(),
        "cancel": s.cancel.summary_json(),
        "charge": s.charge.summary_json(),
    });
    if args.rate.is_some() {
        latency["schedule_lag"] = s.lag.summary_json();
    }
    json!({
        "config": {
            "url": args.url,
            "concurrency": args.concurrency,
            "duration_secs": args.duration,
            "warmup_secs": args.warmup,
            "accounts": if args.hot { 1 } else { args.accounts },
            "hot": args.hot,
            "cancel_ratio": args.cancel_ratio,
            "credit": args.credit,
            "rate": args.rate,
            "max_charges": args.charges,
            "threads": args.threads,
        },
        "elapsed_secs": round3(elapsed),
        "charges": {
            "ok": ok,
            "captured": s.captured,
            "cancelled": s.cancelled,
            "failed": s.failed(),
            "per_sec": (ok as f64 / elapsed * 10.0).round() / 10.0,
            // Every charge of the run, warm-up and the probe included.
            "all_ok": s.all_ok + 1,
            "all_failed": s.all_failed,
        },
        "latency_ms": latency,
        "errors": s.errors.iter().map(|((call, name), n)| json!({
            "call": call, "name": name, "count": n,
        })).collect::<Vec<_>>(),
        "sidecar": args.pid.map(|pid| json!({
            "pid": pid,
            "vm_rss_kib": seen.memory.map(|m| m.rss_kib),
            "vm_hwm_kib": seen.memory.map(|m| m.hwm_kib),
            "cpu_cores": sidecar_cores,
            "cpu_ms_per_charge": sidecar_cores.filter(|_| ok > 0)
                .map(|c| round3(c * elapsed * 1000.0 / ok as f64)),
        })),
        "machine": {
            "cpu_busy_pct": machine_busy,
            "loadgen_cpu_cores": cpu(|c| c.own),
            // Every process seen at both ends of the window, grouped by command name:
            // shows the database's share, and any other load on the machine.
            "cpu_cores_by_command": procstat::cores_by_command(
                &seen.before.processes,
                &seen.after.processes,
                elapsed,
            )
            .into_iter()
            .take(8)
            .map(|(comm, cores)| json!({"command": comm, "cores": round3(cores)}))
            .collect::<Vec<_>>(),
        },
    })
}

fn print_table(args: &RunArgs, s: &Stats, r: &Value) {
    let accounts = if args.hot {
        "1 account (hot)".to_owned()
    } else {
        format!("{} accounts (uniform)", args.accounts)
    };
    let rate = args
        .rate
        .map(|r| format!(", scheduled at {r:.1} charges/s"))
        .unwrap_or_default();
    println!(
        "loadgen → {}: {} clients, {accounts}, cancel ratio {}, {} credit(s) per charge{rate}",
        args.url, args.concurrency, args.cancel_ratio, args.credit
    );
    println!(
        "measured {:.1} s after {:.1} s of warm-up: {} charges ({} captured, {} cancelled), {} failed → {} charges/s",
        r["elapsed_secs"].as_f64().unwrap_or(0.0),
        args.warmup,
        r["charges"]["ok"],
        s.captured,
        s.cancelled,
        s.failed(),
        r["charges"]["per_sec"],
    );
    println!();
    println!(
        "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "latency (ms)", "count", "mean", "p50", "p90", "p99", "max"
    );
    let mut rows = vec!["authorize", "capture", "cancel", "charge"];
    if args.rate.is_some() {
        rows.push("schedule_lag");
    }
    for name in rows {
        let h = &r["latency_ms"][name];
        let count = h["count"].as_u64().unwrap_or(0);
        if count == 0 {
            continue;
        }
        let f = |k: &str| format!("{:.3}", h[k].as_f64().unwrap_or(0.0));
        println!(
            "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            name,
            count,
            f("mean"),
            f("p50"),
            f("p90"),
            f("p99"),
            f("max")
        );
    }
    println!();
    if s.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors (call, error.data.name or transport failure):");
        for ((call, name), n) in &s.errors {
            println!("  {n:>8}  {call:<10} {name}");
        }
    }
    if let Some(sc) = r.get("sidecar").filter(|v| !v.is_null()) {
        let mib = |k: &str| {
            sc[k]
                .as_u64()
                .map(|kib| format!("{:.1} MiB", kib as f64 / 1024.0))
                .unwrap_or_else(|| "?".into())
        };
        println!(
            "sidecar pid {}: VmRSS {} at the end of the window, VmHWM {}; CPU {} cores, {} ms per charge",
            sc["pid"],
            mib("vm_rss_kib"),
            mib("vm_hwm_kib"),
            sc["cpu_cores"],
            sc["cpu_ms_per_charge"],
        );
    }
    let by_command: Vec<String> = r["machine"]["cpu_cores_by_command"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", c["command"].as_str().unwrap_or("?"), c["cores"]))
        .collect();
    println!(
        "machine CPU busy {}% (all cores); loadgen itself {} cores; cores by command: {}",
        r["machine"]["cpu_busy_pct"],
        r["machine"]["loadgen_cpu_cores"],
        by_command.join(", ")
    );
}
