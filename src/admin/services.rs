//! `/api/v1/services`: register services, list them, rotate provider keys.

use actix_web::{HttpResponse, web};

use super::Admin;
use super::dto::{NewServiceBody, ServiceDatabases, ServiceDto, ServiceWithKey};
use crate::error::AppError;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::store::NewService;
use crate::usecase::service_keys;

/// Lists every service.
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, body = [ServiceDto]), (status = 401, body = Problem)))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let services = state.run(|s| s.list_services()).await?;
    let body: Vec<ServiceDto> = services.into_iter().map(ServiceDto::from).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Registers a service and returns its provider key (shown once).
#[utoipa::path(post, path = "/api/v1/services", tag = "services", request_body = NewServiceBody,
    responses((status = 201, body = ServiceWithKey), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 401, body = Problem)))]
pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewServiceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewService {
        technical_name: body.technical_name,
        label: body.label,
        unit_name: body.unit_name,
        integer_balance: body.integer_balance,
        trial_credits: body.trial_credits.0,
        trial_days: body.trial_days,
    };
    let (service, key) = state.run(move |s| service_keys::create(s, &new)).await?;
    Ok(HttpResponse::Created().json(ServiceWithKey {
        service: service.into(),
        key,
    }))
}

/// The admin, or the provider of `name` (its key as the bearer token).
async fn admin_or_provider(
    req: &actix_web::HttpRequest,
    state: &web::Data<AppState>,
    name: &str,
) -> Result<(), ApiError> {
    if super::is_admin(req).await {
        return Ok(());
    }
    let key = super::bearer(req).ok_or(ApiError::Unauthorized)?;
    let name = name.to_owned();
    let service = state.run(move |s| s.service_by_key(&key)).await?;
    match service {
        Some(s) if s.technical_name == name => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Which databases may use the service.
#[utoipa::path(get, path = "/api/v1/services/{name}/databases", tag = "services",
    params(("name" = String, Path, description = "technical name")),
    responses((status = 200, body = ServiceDatabases), (status = 404, body = Problem),
        (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn databases(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    admin_or_provider(&req, &state, &name).await?;
    let (open_to_all, dbuuids) = state
        .run(move |s| {
            let service = s.service_by_name(&name)?;
            Ok::<_, AppError>((service.open_to_all, s.service_databases(service.id)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServiceDatabases {
        open_to_all,
        dbuuids,
    }))
}

/// Opens the service to every database, or limits it to the listed ones. Callable by
/// the admin or by the service's provider (its key as the bearer token).
#[utoipa::path(put, path = "/api/v1/services/{name}/databases", tag = "services",
    params(("name" = String, Path, description = "technical name")),
    request_body = ServiceDatabases,
    responses((status = 200, body = ServiceDatabases), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_databases(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<ServiceDatabases>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    admin_or_provider(&req, &state, &name).await?;
    let body = body.into_inner();
    if body.dbuuids.len() > 10_000 {
        return Err(ApiError::BadRequest("at most 10000 databases".into()));
    }
    if let Some(bad) = body.dbuuids.iter().find(|d| !super::rules::dbuuid(d)) {
        return Err(ApiError::BadRequest(format!(
            "database uuid {bad:?} must be 1-64 visible ASCII characters"
        )));
    }
    let (service, dbuuids) = state
        .run(move |s| s.set_service_databases(&name, body.open_to_all, &body.dbuuids))
        .await?;
    Ok(HttpResponse::Ok().json(ServiceDatabases {
        open_to_all: service.open_to_all,
        dbuuids,
    }))
}

/// Replaces a service's provider key; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/services/{name}/rotate-key", tag = "services",
    params(("name" = String, Path, description = "technical name")),
    responses((status = 200, body = ServiceWithKey), (status = 404, body = Problem),
        (status = 401, body = Problem)))]
pub async fn rotate_key(
    _: Admin,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let (service, key) = state.run(move |s| service_keys::rotate(s, &name)).await?;
    Ok(HttpResponse::Ok().json(ServiceWithKey {
        service: service.into(),
        key,
    }))
}
