//! `/api/v1/services`: register services, list them, rotate provider keys.

use actix_web::{HttpResponse, web};

use super::Admin;
use super::dto::{NewServiceBody, ServiceDto, ServiceWithKey};
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::service_keys;
use crate::store::NewService;

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
        trial_credits: body.trial_credits,
        trial_days: body.trial_days,
    };
    let (service, key) = state.run(move |s| service_keys::create(s, &new)).await?;
    Ok(HttpResponse::Created().json(ServiceWithKey {
        service: service.into(),
        key,
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
