//! `/api/v1/orders` and `/api/v1/services/{name}/packs`; the payment webhook
//! `/api/v1/payments/webhook` is mounted here, in the API's scope, from `webhook`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use crate::http::AppState;
use crate::http::dto::OrderDto;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::{AccountId, Credits};
use crate::payments::{
    Confirmation, OrderId, OrderStatus, Pack, PackId, PackInput, PaymentError, Price,
};
use crate::store::{OrderFilter, Store};

/// Registers these routes in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/orders").route(web::get().to(list)))
        .service(super::resource("/orders/{id}").route(web::get().to(detail)))
        .service(super::resource("/orders/{id}/confirm").route(web::post().to(confirm)))
        .service(super::resource("/orders/{id}/cancel").route(web::post().to(cancel)))
        .service(
            super::resource("/services/{name}/packs")
                .route(web::get().to(packs))
                .route(web::post().to(create_pack)),
        )
        .service(super::resource("/services/{name}/packs/{id}").route(web::put().to(update_pack)))
        .service(
            super::resource("/payments/webhook")
                .route(web::post().to(crate::webhook::payment_webhook)),
        );
}

/// Runs a blocking payments call off the async workers.
async fn run<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Store) -> Result<T, PaymentError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    Ok(web::block(move || f(&store)).await??)
}

/// What confirming did.
#[derive(Serialize, ToSchema)]
pub struct ConfirmResponse {
    pub order: OrderDto,
    /// True when this request credited the order; false when it already was credited.
    pub credited_now: bool,
    /// Why a paid order could not be credited (it stays `paid`; confirm again to retry).
    pub credit_error: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// `pending`, `paid`, `credited` or `cancelled`.
    #[param(pattern = "^(pending|paid|credited|cancelled)$")]
    status: Option<String>,
    account_id: Option<i64>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderQuery),
    responses((status = 200, body = [OrderDto]), (status = 401, body = Problem)))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest("status must be pending, paid, credited or cancelled".into())
        })?),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) || q.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::BadRequest(
            "limit must be 1-500 and offset not negative".into(),
        ));
    }
    let account_id = match q.account_id {
        None => None,
        // No account has such an id: none of its orders to list.
        Some(n) => match AccountId::new(n) {
            Some(id) => Some(id),
            None => return Ok(HttpResponse::Ok().json(Vec::<OrderDto>::new())),
        },
    };
    let filter = OrderFilter {
        account_id,
        status,
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let orders = run(&state, move |s| s.orders(&filter)).await?;
    Ok(HttpResponse::Ok().json(orders.into_iter().map(OrderDto::from).collect::<Vec<_>>()))
}

/// The order a path names; ids no order can have are not found, as unknown ones are.
fn order_id(id: i64) -> Result<OrderId, ApiError> {
    OrderId::new(id).ok_or_else(|| ApiError::NotFound(format!("no order {id}")))
}

/// One order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = Problem)))]
pub async fn detail(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(path.into_inner())?;
    let order = run(&state, move |s| s.order(id)).await?;
    Ok(HttpResponse::Ok().json(OrderDto::from(order)))
}

/// Optional body of a confirmation.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The payment's reference (bank transfer, provider payment id), kept on the order.
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
}

/// Confirms the payment of an order and credits it (once: a second confirmation finds it
/// credited and changes nothing).
#[utoipa::path(post, path = "/api/v1/orders/{id}/confirm", tag = "orders",
    params(("id" = i64, Path)), request_body(content = Option<ConfirmBody>),
    responses((status = 200, body = ConfirmResponse), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the order is cancelled")))]
pub async fn confirm(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(path.into_inner())?;
    // The body is optional: none, or JSON `null` (as the document allows), is no reference.
    let body: ConfirmBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConfirmBody::default()
    } else {
        serde_json::from_slice::<Option<ConfirmBody>>(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
            .unwrap_or_default()
    };
    if body
        .reference
        .as_deref()
        .is_some_and(|r| !super::rules::sized_text(r, 200))
    {
        return Err(ApiError::BadRequest(
            "reference must be 1-200 characters".into(),
        ));
    }
    let confirmation = Confirmation {
        by: format!("admin:{}", admin.0.name),
        reference: body.reference,
    };
    let outcome = run(&state, move |s| s.confirm_order(id, &confirmation)).await?;
    Ok(HttpResponse::Ok().json(ConfirmResponse {
        order: outcome.order.into(),
        credited_now: outcome.credited_now,
        credit_error: outcome.credit_error,
    }))
}

/// Cancels a pending order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the order is paid or credited")))]
pub async fn cancel(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(path.into_inner())?;
    let order = run(&state, move |s| s.cancel_order(id, None)).await?;
    Ok(HttpResponse::Ok().json(OrderDto::from(order)))
}

/// A credit pack.
#[derive(Serialize, ToSchema)]
pub struct PackDto {
    #[schema(value_type = i64)]
    pub id: PackId,
    pub name: String,
    #[schema(value_type = String, example = "100")]
    pub credits: Credits,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
}

impl From<Pack> for PackDto {
    fn from(p: Pack) -> Self {
        PackDto {
            id: p.id,
            name: p.name,
            credits: p.credits,
            price_minor: p.price.minor,
            currency: p.price.currency,
            active: p.active,
        }
    }
}

fn yes() -> bool {
    true
}

/// A pack to create, or the new values of one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackBody {
    #[schema(
        example = "Standard",
        max_length = 80,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[schema(value_type = String, example = "100",
        pattern = r"^([1-9][0-9]{0,11}(\.[0-9]{1,4})?|0\.([1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$")]
    pub credits: super::rules::PositiveAmount,
    /// Minor units of `currency` (cents).
    #[schema(example = 1000, minimum = 0, maximum = 1_000_000_000_000_i64)]
    #[serde(deserialize_with = "super::rules::whole")]
    pub price_minor: i64,
    #[schema(example = "EUR", pattern = r"^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default = "yes")]
    pub active: bool,
}

impl PackBody {
    fn input(self) -> Result<PackInput, ApiError> {
        let price = Price::from_minor(self.price_minor, &self.currency)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        Ok(PackInput {
            name: self.name,
            credits: self.credits.0,
            price,
            active: self.active,
        })
    }
}

/// The packs of a service, on sale or not.
#[utoipa::path(get, path = "/api/v1/services/{name}/packs", tag = "orders",
    params(("name" = String, Path)),
    responses((status = 200, body = [PackDto]), (status = 404, body = Problem)))]
pub async fn packs(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let packs = run(&state, move |s| {
        let service = s.service_by_name(&name)?;
        s.packs(service.id, false)
    })
    .await?;
    Ok(HttpResponse::Ok().json(packs.into_iter().map(PackDto::from).collect::<Vec<_>>()))
}

/// Adds a pack to a service.
#[utoipa::path(post, path = "/api/v1/services/{name}/packs", tag = "orders",
    params(("name" = String, Path)), request_body = PackBody,
    responses((status = 201, body = PackDto), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_pack(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PackBody>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let input = body.into_inner().input()?;
    let pack = run(&state, move |s| {
        let service = s.service_by_name(&name)?;
        s.create_pack(service.id, &input)
    })
    .await?;
    Ok(HttpResponse::Created().json(PackDto::from(pack)))
}

/// Changes a pack (`active: false` takes it off sale).
#[utoipa::path(put, path = "/api/v1/services/{name}/packs/{id}", tag = "orders",
    params(("name" = String, Path), ("id" = i64, Path)), request_body = PackBody,
    responses((status = 200, body = PackDto), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update_pack(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    body: web::Json<PackBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, id) = path.into_inner();
    let id = PackId::new(id)
        .ok_or_else(|| ApiError::NotFound(format!("no pack {id} for this service")))?;
    let input = body.into_inner().input()?;
    let pack = run(&state, move |s| {
        let service = s.service_by_name(&name)?;
        s.update_pack(service.id, id, &input)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PackDto::from(pack)))
}
