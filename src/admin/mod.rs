//! The admin API under `/api/v1`: bearer-token auth, problem JSON errors, OpenAPI.

mod accounts;
mod alerts;
mod audit;
pub mod databases;
pub mod dto;
mod orders;
mod rules;
mod services;
mod sms;

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::store::AdminToken;

/// An authenticated admin caller.
pub struct Admin(pub AdminToken);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already checked by `authenticate` for this request.
        if let Some(token) = req.extensions().get::<AdminToken>().cloned() {
            return Box::pin(async move { Ok(Admin(token)) });
        }
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

/// Who may call a route. Decided from the method and path alone, so that the caller is
/// known before anything of the request (body, query, path parameters) is parsed: a bad
/// credential gets 401 whatever else is wrong with the request.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    /// The OpenAPI document; the payment webhook (signed by the payment provider: its
    /// signature covers the body, so the handler checks it).
    Open,
    Admin,
    /// `/services/{name}/databases`: the admin or the service's provider key.
    AdminOrProvider(String),
    /// `/databases/{dbuuid}/…`: the admin or that database's token.
    AdminOrDatabase(String),
    /// `POST /databases`: a registration secret, checked by the handler (which decides
    /// what a secret may register); here only its presence.
    Registration,
}

fn gate(method: &Method, path: &str) -> Gate {
    let rest = path.strip_prefix("/api/v1").unwrap_or(path);
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["openapi.json"] | ["payments", "webhook"] => Gate::Open,
        ["databases"] if method == Method::POST => Gate::Registration,
        ["databases", dbuuid, ..] => Gate::AdminOrDatabase(percent_decode(dbuuid)),
        ["services", name, "databases"] => Gate::AdminOrProvider(percent_decode(name)),
        _ => Gate::Admin,
    }
}

/// A path segment as the router gives it to handlers (`%2F` → `/`); invalid escapes and
/// non-UTF-8 bytes are kept as they are, and then match no credential.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// Middleware of the `/api/v1` scope: checks the caller's credential against the route's
/// [`Gate`] before the handler's extractors read anything.
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match check(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

async fn check(req: &ServiceRequest) -> Result<(), ApiError> {
    let gate = gate(req.method(), req.path());
    if gate == Gate::Open {
        return Ok(());
    }
    let Some(secret) = bearer(req.request()) else {
        return Err(ApiError::Unauthorized);
    };
    if gate == Gate::Registration {
        return Ok(());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let candidate = secret.clone();
    if let Some(token) = state
        .run(move |store| store.verify_admin_token(&candidate))
        .await?
    {
        req.extensions_mut().insert(token);
        return Ok(());
    }
    let allowed = match gate {
        Gate::AdminOrProvider(name) => state
            .run(move |store| store.service_by_key(&secret))
            .await?
            .is_some_and(|s| s.technical_name == name),
        Gate::AdminOrDatabase(dbuuid) => {
            state
                .run(move |store| store.verify_database_token(&dbuuid, &secret))
                .await?
        }
        Gate::Open | Gate::Registration | Gate::Admin => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Makes the document say what the server really answers, for every operation at once:
/// errors are `application/problem+json` (not the `application/json` utoipa assumes), and
/// the statuses any operation can give are declared: 400 (a query, path or body that does
/// not parse), 401 (no valid credential: checked first, see [`authenticate`]), 404 (an
/// operation on a resource named in the path), 413 (a body over `http.max_body_bytes`),
/// 503 (the database is unavailable).
struct Conformance;

impl Modify for Conformance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    PROBLEM,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let has_body = op.request_body.is_some();
                let responses = &mut op.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('2') {
                        continue;
                    }
                    if let utoipa::openapi::RefOr::T(r) = response
                        && let Some(content) = r.content.shift_remove("application/json")
                    {
                        r.content.insert(PROBLEM.to_owned(), content);
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                add("400", "Malformed query, path or body");
                add("401", "No valid credential");
                if path.contains('{') {
                    add("404", "Not found");
                }
                if has_body {
                    add("413", "Body larger than the configured limit");
                }
                add("503", "Database unavailable; retry later");
            }
        }
    }
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
        crate::webhook::payment_webhook,
        sms::settings,
        sms::days,
    ),
    components(schemas(Problem, crate::store::AuditLine, audit::AuditPage)),
    modifiers(&BearerAuth, &Conformance),
    security(("bearer" = []))
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Every path of the API with the methods it answers (the `Allow` header of a 405).
/// A unit test holds this table equal to the OpenAPI document.
const RESOURCES: &[(&str, &str)] = &[
    ("/openapi.json", "GET"),
    ("/services", "GET, POST"),
    ("/services/{name}/rotate-key", "POST"),
    ("/services/{name}/databases", "GET, PUT"),
    ("/services/{name}/packs", "GET, POST"),
    ("/services/{name}/packs/{id}", "PUT"),
    ("/accounts", "GET"),
    ("/accounts/{id}", "GET"),
    ("/accounts/{id}/journal", "GET"),
    ("/accounts/{id}/balance", "GET"),
    ("/accounts/{id}/sms", "GET"),
    ("/sms/settings", "GET"),
    ("/grants", "POST"),
    ("/alerts", "GET"),
    ("/audit", "GET"),
    ("/orders", "GET"),
    ("/orders/{id}", "GET"),
    ("/orders/{id}/confirm", "POST"),
    ("/orders/{id}/cancel", "POST"),
    ("/payments/webhook", "POST"),
    ("/databases", "GET, POST"),
    ("/databases/{dbuuid}", "GET, DELETE"),
    ("/databases/{dbuuid}/refresh", "POST"),
    ("/databases/{dbuuid}/accounts", "POST"),
];

/// A resource of [`RESOURCES`] whose other methods answer 405 with its `Allow` list
/// (without this, actix falls through to the app's 404).
fn resource(path: &'static str) -> actix_web::Resource {
    let allow = RESOURCES
        .iter()
        .find(|(p, _)| *p == path)
        .map_or("", |(_, allow)| *allow);
    web::resource(path).default_service(web::to(move || async move {
        ApiError::MethodNotAllowed(allow).error_response()
    }))
}

pub fn scope() -> impl actix_web::dev::HttpServiceFactory {
    web::scope("/api/v1")
        .wrap(actix_web::middleware::from_fn(authenticate))
        .service(resource("/openapi.json").route(web::get().to(openapi)))
        .service(
            resource("/services")
                .route(web::get().to(services::list))
                .route(web::post().to(services::create)),
        )
        .service(
            resource("/services/{name}/rotate-key").route(web::post().to(services::rotate_key)),
        )
        .service(
            resource("/services/{name}/databases")
                .route(web::get().to(services::databases))
                .route(web::put().to(services::set_databases)),
        )
        .service(resource("/accounts").route(web::get().to(accounts::list)))
        .service(resource("/accounts/{id}").route(web::get().to(accounts::detail)))
        .service(resource("/accounts/{id}/journal").route(web::get().to(accounts::journal)))
        .service(resource("/accounts/{id}/balance").route(web::get().to(accounts::balance_at)))
        .service(resource("/accounts/{id}/sms").route(web::get().to(sms::days)))
        .service(resource("/sms/settings").route(web::get().to(sms::settings)))
        .service(resource("/grants").route(web::post().to(accounts::grant)))
        .service(resource("/alerts").route(web::get().to(alerts::list)))
        .service(resource("/audit").route(web::get().to(audit::list)))
        .configure(orders::routes)
        .service(
            resource("/databases")
                .route(web::post().to(databases::register))
                .route(web::get().to(databases::list)),
        )
        .service(
            resource("/databases/{dbuuid}")
                .route(web::get().to(databases::detail))
                .route(web::delete().to(databases::delete)),
        )
        .service(resource("/databases/{dbuuid}/refresh").route(web::post().to(databases::refresh)))
        .service(
            resource("/databases/{dbuuid}/accounts").route(web::post().to(databases::accounts)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_follow_the_routes() {
        assert_eq!(gate(&Method::GET, "/api/v1/openapi.json"), Gate::Open);
        assert_eq!(gate(&Method::POST, "/api/v1/payments/webhook"), Gate::Open);
        assert_eq!(gate(&Method::POST, "/api/v1/databases"), Gate::Registration);
        assert_eq!(gate(&Method::GET, "/api/v1/databases"), Gate::Admin);
        assert_eq!(
            gate(&Method::POST, "/api/v1/databases/a%2Db/refresh"),
            Gate::AdminOrDatabase("a-b".into())
        );
        assert_eq!(
            gate(&Method::PUT, "/api/v1/services/sms/databases"),
            Gate::AdminOrProvider("sms".into())
        );
        assert_eq!(gate(&Method::POST, "/api/v1/grants"), Gate::Admin);
        assert_eq!(
            gate(&Method::GET, "/api/v1/services/sms/packs"),
            Gate::Admin
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    /// The `Allow` lists of 405 answers are the methods the OpenAPI document declares
    /// (the document itself is served but not described).
    #[test]
    fn allow_lists_follow_the_document() {
        let doc = ApiDoc::openapi();
        let mut documented: Vec<(String, String)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ];
                let mut allow: Vec<&str> = methods
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(m, _)| *m)
                    .collect();
                allow.sort_unstable();
                let path = path.strip_prefix("/api/v1").unwrap_or(path).to_owned();
                (path, allow.join(", "))
            })
            .collect();
        documented.sort();
        let mut table: Vec<(String, String)> = RESOURCES
            .iter()
            .filter(|(p, _)| *p != "/openapi.json")
            .map(|(p, allow)| {
                let mut a: Vec<&str> = allow.split(", ").collect();
                a.sort_unstable();
                ((*p).to_owned(), a.join(", "))
            })
            .collect();
        table.sort();
        assert_eq!(table, documented);
    }
}
