//! `/api/v1/alerts`: the low-credit alert outbox, for operators.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::AccountId;
use crate::store::{AlertFilter, AlertId};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `all` (default), `pending`, `failing` or `sent`.
    #[param(pattern = "^(all|pending|failing|sent)$")]
    status: Option<String>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One alert e-mail and where it stands.
#[derive(Serialize, ToSchema)]
pub struct AlertDto {
    #[schema(value_type = i64)]
    pub id: AlertId,
    #[schema(value_type = i64)]
    pub account_id: AccountId,
    pub recipient: String,
    /// `pending`, `failing` or `sent`.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
}

/// Low-credit alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = [AlertDto]), (status = 400, body = Problem),
        (status = 401, body = Problem)))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = AlertFilter::parse(q.status.as_deref().unwrap_or("all")).ok_or_else(|| {
        ApiError::BadRequest("status must be all, pending, failing or sent".into())
    })?;
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=500).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and 500, not {n}"
            )));
        }
    };
    let alerts = state.run(move |s| s.list_alerts(filter, limit)).await?;
    let body: Vec<AlertDto> = alerts
        .into_iter()
        .map(|a| AlertDto {
            id: a.id,
            account_id: a.account_id,
            recipient: a.recipient,
            state: a.state.to_owned(),
            attempts: a.attempts,
            last_error: a.last_error,
            created_at: a.created_at.to_string(),
            next_attempt_at: a.next_attempt_at.map(|t| t.to_string()),
            sent_at: a.sent_at.map(|t| t.to_string()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}
