//! The admin API under `/api/v1`: bearer-token auth, problem JSON errors, OpenAPI.

mod accounts;
mod alerts;
mod audit;
pub mod databases;
pub mod dto;
mod orders;
mod services;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::problem::{ApiError, Problem};
use crate::store::AdminToken;

/// An authenticated admin caller.
pub struct Admin(pub AdminToken);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let secret = bearer(req);
        Box::pin(async move {
            let (Some(state), Some(secret)) = (state, secret) else {
                return Err(ApiError::Unauthorized);
            };
            state
                .run(move |store| store.verify_admin_token(&secret))
                .await?
                .map(Admin)
                .ok_or(ApiError::Unauthorized)
        })
    }
}

/// The `Authorization: Bearer …` credential, if plausible.
pub(super) fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 256)
}

/// Whether the request carries a valid admin token (for routes that also accept another
/// credential).
pub(super) async fn is_admin(req: &HttpRequest) -> bool {
    let mut payload = Payload::None;
    Admin::from_request(req, &mut payload).await.is_ok()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin token from `iap-sidecar admin-token create`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "iap-sidecar admin API", description = "Services, accounts, grants and the journal of the credit ledger."),
    paths(
        services::list,
        services::create,
        services::rotate_key,
        services::databases,
        services::set_databases,
        accounts::list,
        accounts::detail,
        accounts::journal,
        accounts::balance_at,
        accounts::grant,
        alerts::list,
        audit::list,
        databases::register,
        databases::list,
        databases::detail,
        databases::refresh,
        databases::delete,
        databases::accounts,
        orders::list,
        orders::detail,
        orders::confirm,
        orders::cancel,
        orders::packs,
        orders::create_pack,
        orders::update_pack,
        orders::payment_webhook,
    ),
    components(schemas(Problem, crate::store::AuditLine, audit::AuditPage)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn scope() -> actix_web::Scope {
    web::scope("/api/v1")
        .route("/openapi.json", web::get().to(openapi))
        .route("/services", web::get().to(services::list))
        .route("/services", web::post().to(services::create))
        .route(
            "/services/{name}/rotate-key",
            web::post().to(services::rotate_key),
        )
        .route(
            "/services/{name}/databases",
            web::get().to(services::databases),
        )
        .route(
            "/services/{name}/databases",
            web::put().to(services::set_databases),
        )
        .route("/accounts", web::get().to(accounts::list))
        .route("/accounts/{id}", web::get().to(accounts::detail))
        .route("/accounts/{id}/journal", web::get().to(accounts::journal))
        .route(
            "/accounts/{id}/balance",
            web::get().to(accounts::balance_at),
        )
        .route("/grants", web::post().to(accounts::grant))
        .route("/alerts", web::get().to(alerts::list))
        .route("/audit", web::get().to(audit::list))
        .configure(orders::routes)
        .route("/databases", web::post().to(databases::register))
        .route("/databases", web::get().to(databases::list))
        .route("/databases/{dbuuid}", web::get().to(databases::detail))
        .route("/databases/{dbuuid}", web::delete().to(databases::delete))
        .route(
            "/databases/{dbuuid}/refresh",
            web::post().to(databases::refresh),
        )
        .route(
            "/databases/{dbuuid}/accounts",
            web::post().to(databases::accounts),
        )
}
