//! Starting the service: store, migrations, HTTP server, background tasks.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::alerts::{Mailer, Worker};
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::ledger::LedgerError;
use crate::store::Store;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] LedgerError),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A started service.
pub struct Started {
    pub addr: std::net::SocketAddr,
    pub server: actix_web::dev::Server,
    pub store: Store,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Started {
    /// Runs until the server stops (SIGINT/SIGTERM: in-flight requests finish first).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.server.await;
        // An alert cut off mid-send is retried once its claim lapses.
        for task in &self.tasks {
            task.abort();
        }
        result
    }
}

/// Opens the database (migrating it if configured), binds, and starts serving.
/// Must run inside a Tokio runtime.
pub fn start(settings: Settings) -> Result<Started, StartError> {
    let store = open_store(&settings)?;
    start_with_store(settings, store)
}

/// [`start`] on a store opened by the caller (tests use one with a manual clock).
pub fn start_with_store(settings: Settings, store: Store) -> Result<Started, StartError> {
    let addr = settings.bind_addr()?;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let interval = Duration::from_secs(settings.ledger.sweep_interval_secs);
    let alerts = settings.alerts.clone();
    let odoo = settings.odoo.clone();
    let state_limits = settings.limits.clone();
    let smtp = settings.smtp.clone();
    let portal = settings.portal.clone();
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let public_url = settings
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
        .trim_end_matches('/')
        .to_owned();
    let state = AppState {
        store: store.clone(),
        limiter: Arc::new(http::rate_limit::RateLimiter::new(&settings.limits)),
        settings: Arc::new(settings),
        public_url: public_url.clone(),
    };
    let running = http::serve(state, listener).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let mut tasks = vec![
        tokio::spawn(crate::sweeper::run(store.clone(), interval)),
        tokio::spawn(crate::http::admin::databases::refresh_loop(
            store.clone(),
            Duration::from_secs(odoo.refresh_interval_secs),
            Duration::from_secs(odoo.timeout_secs),
            crate::odoo::TargetPolicy::allowing(&odoo.allowed_hosts),
            crate::usecase::contact::Rules::from_settings(&state_limits),
        )),
    ];
    if alerts.worker {
        match Mailer::from_settings(&smtp, &public_url).map_err(StartError::Smtp)? {
            Some(mailer) => tasks.push(tokio::spawn(
                Worker {
                    store: store.clone(),
                    mailer,
                    settings: alerts,
                    public_url,
                    keys: crate::portal::session::Keys::load(&portal, &store)?,
                }
                .run(),
            )),
            None => tracing::warn!("no smtp.host: low-credit alerts wait in the outbox"),
        }
    }
    Ok(Started {
        addr: running.addr,
        server: running.server,
        store,
        tasks,
    })
}

/// Connects and, when `database.migrate_on_start` is set, applies pending migrations.
pub fn open_store(settings: &Settings) -> Result<Store, LedgerError> {
    let store = Store::connect(&settings.database)?
        .with_max_hold_ttl_hours(settings.ledger.max_hold_ttl_hours);
    if settings.database.migrate_on_start {
        let applied = store.migrate()?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
    }
    Ok(store)
}
