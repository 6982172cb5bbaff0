//! `/api/v1/sms/…`: what SMS cost and what an account sent, for operators.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::{AccountId, Credits};

/// One country's price.
#[derive(Serialize, ToSchema)]
pub struct SmsPriceDto {
    /// Country calling code (`32`, `1`), or `*` for every country without its own price.
    pub country: String,
    /// Credits per message segment.
    #[schema(value_type = String, example = "0.5")]
    pub per_segment: Credits,
}

/// The SMS settings in force.
#[derive(Serialize, ToSchema)]
pub struct SmsSettingsDto {
    /// The IAP service SMS are paid on.
    pub service: String,
    /// The gateway that sends; none: every message is answered `server_error`.
    pub gateway: Option<String>,
    pub require_registration: bool,
    pub prices: Vec<SmsPriceDto>,
}

/// SMS prices per country and the gateway that sends.
#[utoipa::path(get, path = "/api/v1/sms/settings", tag = "sms",
    responses((status = 200, body = SmsSettingsDto), (status = 401, body = Problem)))]
pub async fn settings(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rules = &state.sms.rules;
    Ok(HttpResponse::Ok().json(SmsSettingsDto {
        service: rules.service.clone(),
        gateway: state.settings.sms.gateway.clone(),
        require_registration: rules.require_registration,
        prices: rules
            .prices
            .iter()
            .map(|(country, price)| SmsPriceDto {
                country: country.clone(),
                per_segment: *price,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DaysQuery {
    /// Days back from today (default 30, at most 366).
    #[param(minimum = 1, maximum = 366)]
    days: Option<i64>,
}

/// One day of an account's SMS (UTC).
#[derive(Serialize, ToSchema)]
pub struct SmsDayDto {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Accepted, not yet taken by the gateway.
    pub queued: i64,
    /// Taken by the gateway, no receipt yet.
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Credits consumed.
    #[schema(value_type = String, example = "12.5")]
    pub spent: Credits,
}

/// An account's SMS per day, newest first (days without SMS left out).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/sms", tag = "sms",
    params(("id" = i64, Path), DaysQuery),
    responses((status = 200, body = [SmsDayDto]), (status = 400, body = Problem),
        (status = 404, body = Problem)))]
pub async fn days(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let id = AccountId::new(id).ok_or_else(|| ApiError::NotFound(format!("no account {id}")))?;
    let days = match query.days {
        None => 30,
        Some(n) if (1..=366).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "days must be between 1 and 366, not {n}"
            )));
        }
    };
    let rows = state
        .run(move |s| {
            s.account(id)?;
            s.sms_days(id, days)
        })
        .await?;
    let body = rows
        .into_iter()
        .map(|d| {
            Ok(SmsDayDto {
                day: crate::ledger::Timestamp::from_day(d.day).date(),
                queued: d.queued,
                sent: d.submitted,
                delivered: d.delivered,
                failed: d.failed,
                spent: Credits::from_units(d.spent)
                    .map_err(|e| ApiError::Internal(format!("corrupt SMS total: {e}")))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(body))
}
