//! Logs (tracing) and Prometheus metrics.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::ledger::LedgerError;

/// Connection pool figures, read when metrics are rendered.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PoolState {
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

/// Starts the log subscriber once; `filter` is a `tracing` filter such as `info`.
pub fn init_logs(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests starting several servers) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The process-wide metrics, registered once.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ledger_operations: IntCounterVec,
    /// Operations per ledger-engine transaction (group commit).
    pub ledger_batch_size: Histogram,
    pub iap_errors: IntCounterVec,
    pool: IntGaugeVec,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new_custom(Some("iap_sidecar".into()), None)
            .unwrap_or_else(|_| Registry::new());
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("static metric definition");
        let ledger_operations = IntCounterVec::new(
            Opts::new("ledger_operations_total", "Ledger operations by outcome"),
            &["operation", "outcome"],
        )
        .expect("static metric definition");
        let ledger_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "ledger_batch_operations",
                "Authorize, capture and cancel operations committed per transaction",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .expect("static metric definition");
        let iap_errors = IntCounterVec::new(
            Opts::new(
                "iap_errors_total",
                "IAP protocol errors answered, by route and kind",
            ),
            &["route", "error"],
        )
        .expect("static metric definition");
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections"),
            &["state"],
        )
        .expect("static metric definition");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(ledger_operations.clone()),
            Box::new(ledger_batch_size.clone()),
            Box::new(iap_errors.clone()),
            Box::new(pool.clone()),
        ] {
            registry.register(c).expect("metrics registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            ledger_operations,
            ledger_batch_size,
            iap_errors,
            pool,
        }
    }

    /// Counts one ledger operation under its outcome (`ok` or the error's name).
    pub fn ledger<T>(&self, operation: &str, result: &Result<T, LedgerError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.ledger_operations
            .with_label_values(&[operation, outcome])
            .inc();
    }

    /// Records the size of one ledger-engine batch.
    pub fn ledger_batch(&self, operations: usize) {
        #[allow(clippy::cast_precision_loss)] // batch sizes are at most a few hundred
        self.ledger_batch_size.observe(operations as f64);
    }

    /// The Prometheus text exposition, with pool figures read now.
    pub fn render(&self, pool: PoolState) -> String {
        self.pool
            .with_label_values(&["open"])
            .set(i64::from(pool.connections));
        self.pool
            .with_label_values(&["idle"])
            .set(i64::from(pool.idle));
        self.pool
            .with_label_values(&["max"])
            .set(i64::from(pool.max));
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
