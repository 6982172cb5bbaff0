//! The audit log of operator actions (the console writes it).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::Admin;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::store::{AuditLine, AuditLineId};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many lines (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only lines older than this id (paging back).
    pub before_id: Option<i64>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub lines: Vec<AuditLine>,
}

/// Who did what, when: one line per console action, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = Problem),
        (status = 400, body = Problem)))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let before = match query.before_id {
        None => None,
        // No line has an id below 1: nothing comes before it.
        Some(n) => match AuditLineId::new(n) {
            Some(id) => Some(id),
            None => return Ok(HttpResponse::Ok().json(AuditPage { lines: Vec::new() })),
        },
    };
    let lines = state.run(move |s| s.audit_log(limit, before)).await?;
    Ok(HttpResponse::Ok().json(AuditPage { lines }))
}
