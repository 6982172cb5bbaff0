//! The HTTP plumbing every face shares: the server (limits, JSON/query/path error
//! shapes, shutdown), the observing middleware, `/health` and `/metrics`, the shared
//! state handlers reach, the per-client rate limiter and RFC 7807 problems. The faces
//! themselves (protocol, portal, admin, webhook, console) are sibling rooms; `app` hands
//! their routes to [`serve`].

pub mod dto;
mod middleware;
pub mod problem;
pub mod rate_limit;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Settings;
use crate::store::Store;
use crate::telemetry::METRICS;
use problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    /// Public origin (no trailing slash): `http.public_url`, or the bound address.
    pub public_url: String,
    /// Requests per client address on the routes that need no key.
    pub limiter: Arc<rate_limit::RateLimiter>,
    /// Odoo's SMS: the rules, the gateways (their callbacks come to
    /// `/sms/receipts/{name}`) and the worker's bell.
    pub sms: Arc<SmsState>,
}

/// What the SMS routes reach.
pub struct SmsState {
    pub rules: crate::usecase::sms::SmsRules,
    pub gateways: crate::sms::gateway::Gateways,
    /// Rung when messages or reports were queued.
    pub wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// Runs a blocking store call off the async workers.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let store = self.store.clone();
        web::block(move || f(&store).map_err(Into::into)).await?
    }
}

/// A server bound to its listener, not yet awaited.
pub struct Running {
    pub server: Server,
    pub addr: SocketAddr,
}

/// Builds the server on an already-bound listener (port 0 in tests), with the faces'
/// routes that `routes` registers.
pub fn serve(
    state: AppState,
    listener: TcpListener,
    routes: fn(&mut web::ServiceConfig),
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let limit = state.settings.http.max_body_bytes;
    let shutdown = state.settings.http.shutdown_timeout_secs;
    let workers = state.settings.http.workers;
    let data = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(limit))
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |e, _| problem::json_error(e, limit)),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| problem::query_error(e)))
            .app_data(web::PathConfig::default().error_handler(|e, _| problem::path_error(e)))
            .wrap(actix_web::middleware::from_fn(middleware::observe))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .shutdown_timeout(shutdown);
    if let Some(n) = workers {
        server = server.workers(n.max(1));
    }
    Ok(Running {
        server: server.run(),
        addr,
    })
}

/// Liveness and readiness: 200 when the database takes writes, 503 otherwise, within
/// about `database.health_timeout_ms` (the probe bounds its own waits; the timeout here
/// only guards against a probe stuck in the network).
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.store.backend();
    let store = state.store.clone();
    let bound = store.health_timeout() + Duration::from_millis(500);
    let ping = tokio::time::timeout(bound, web::block(move || store.check_writable())).await;
    match ping {
        Ok(Ok(Ok(()))) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ok",
            "database": backend,
        })),
        _ => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "unavailable",
            "database": backend,
        })),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render(state.store.pool_state()))
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}
