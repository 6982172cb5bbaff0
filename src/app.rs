//! Starting the service: store, migrations, HTTP server, background tasks.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::alerts::Mailer;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::ledger::LedgerError;
use crate::store::Store;
use crate::workers::alerts::Worker;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] crate::error::AppError),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("sms: {0}")]
    Sms(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl From<LedgerError> for StartError {
    fn from(e: LedgerError) -> Self {
        StartError::Store(e.into())
    }
}

/// A started service.
pub struct Started {
    pub addr: std::net::SocketAddr,
    pub server: actix_web::dev::Server,
    pub store: Store,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The SMS worker, stopped gracefully: a message the gateway took while the sidecar
    /// was stopping must be recorded, or it would be sent again after the restart.
    sms_worker: Option<(tokio::task::JoinHandle<()>, crate::workers::sms::Stop)>,
}

impl Started {
    /// Runs until the server stops (SIGINT/SIGTERM: in-flight requests finish first).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((task, stop)) = self.sms_worker {
            // Attempts in flight finish (each is bounded by `sms.submit_timeout_secs`);
            // none starts any more.
            let bound = stop.request();
            if tokio::time::timeout(bound, task).await.is_err() {
                tracing::warn!("the SMS worker did not stop in time");
            }
        }
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
    let sms_settings = settings.sms.clone();
    let sms = sms_state(&settings, &store, &public_url)?;
    let state = AppState {
        store: store.clone(),
        limiter: Arc::new(http::rate_limit::RateLimiter::new(&settings.limits)),
        settings: Arc::new(settings),
        public_url: public_url.clone(),
        sms: sms.clone(),
    };
    let running = http::serve(state, listener, routes).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let mut tasks = vec![
        tokio::spawn(crate::workers::sweeper::run(store.clone(), interval)),
        tokio::spawn(crate::workers::odoo_refresh::refresh_loop(
            store.clone(),
            Duration::from_secs(odoo.refresh_interval_secs),
            Duration::from_secs(odoo.timeout_secs),
            crate::odoo::TargetPolicy::allowing(&odoo.allowed_hosts),
            crate::usecase::contact::Rules::from_settings(&state_limits),
        )),
    ];
    let mut sms_worker = None;
    if sms_settings.worker
        && let Some(name) = &sms_settings.gateway
        && let Some(gateway) = sms.gateways.get(name)
    {
        let policy = crate::odoo::TargetPolicy::allowing(&odoo.allowed_hosts);
        let stop = crate::workers::sms::Stop::new(
            sms.wake.clone(),
            Duration::from_secs(sms_settings.submit_timeout_secs.max(1) + 5),
        );
        let task = tokio::spawn(
            crate::workers::sms::SmsWorker {
                store: store.clone(),
                gateway: gateway.clone(),
                gateway_name: name.clone(),
                settings: sms_settings.clone(),
                reports_http: reports_client(&policy)?,
                policy,
                wake: sms.wake.clone(),
                stop: stop.clone(),
            }
            .run(),
        );
        sms_worker = Some((task, stop));
    }
    if alerts.worker {
        match Mailer::from_settings(&smtp, &public_url).map_err(StartError::Smtp)? {
            Some(mailer) => tasks.push(tokio::spawn(
                Worker {
                    store: store.clone(),
                    mailer,
                    settings: alerts,
                    public_url,
                    keys: crate::pages::session::Keys::load(&portal, &store)?,
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
        sms_worker,
    })
}

/// The SMS rules and gateways; a gateway pushing receipts (SMPP) records them through
/// the same use case as the HTTP callbacks.
fn sms_state(
    settings: &Settings,
    store: &Store,
    public_url: &str,
) -> Result<Arc<http::SmsState>, StartError> {
    let invalid = |e: String| StartError::Sms(e);
    let rules = crate::usecase::sms::SmsRules::from_settings(
        &settings.sms,
        settings.ledger.max_hold_ttl_hours,
    )
    .map_err(invalid)?;
    let wake = Arc::new(tokio::sync::Notify::new());
    crate::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| invalid(format!("HTTP client: {e}")))?;
    let mut gateways = crate::sms::gateway::Gateways::new();
    for (name, gateway) in &settings.sms.gateways {
        let (store, sink_name, sink_wake) = (store.clone(), name.clone(), wake.clone());
        let receipts: crate::sms::gateway::ReceiptSink = Arc::new(move |receipt| {
            let (store, name, wake) = (store.clone(), sink_name.clone(), sink_wake.clone());
            Box::pin(async move {
                let recorded = tokio::task::spawn_blocking(move || {
                    crate::usecase::sms::record_receipt(&store, &name, &receipt)
                })
                .await;
                match recorded {
                    Ok(Ok(outcome)) => {
                        tracing::debug!(?outcome, "SMS receipt");
                        wake.notify_one();
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "SMS receipt not recorded"),
                    Err(e) => tracing::warn!(error = %e, "SMS receipt task failed"),
                }
            })
        });
        let cx = crate::sms::gateway::Context {
            name: name.clone(),
            public_url: public_url.to_owned(),
            receipts,
            http: http.clone(),
        };
        let adapter = crate::sms::gateway::build(gateway, cx)
            .map_err(|e| invalid(format!("sms.gateways.{name}: {e}")))?;
        gateways.insert(name.clone(), adapter);
    }
    Ok(Arc::new(http::SmsState {
        rules,
        gateways,
        wake,
    }))
}

/// The client delivery reports go out with: a `webhook_url` is the caller's claim, so it
/// reaches only what `odoo.allowed_hosts` allows, and follows no redirect.
fn reports_client(policy: &crate::odoo::TargetPolicy) -> Result<reqwest::Client, StartError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(policy.resolver())
        .build()
        .map_err(|e| StartError::Sms(format!("HTTP client: {e}")))
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

/// Every face's routes, in the order they are matched.
fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(crate::admin::scope())
        .configure(crate::protocol::routes)
        .configure(crate::portal::routes)
        .configure(crate::console::routes);
}
