//! `/api/v1/accounts` and `/api/v1/grants`: balances, lots, holds, journal, grants.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::Admin;
use super::dto::{
    AccountDetail, AccountDto, BalanceAt, GrantBody, GrantResponse, HoldDto, JournalDto,
    JournalPage, LotDto,
};
use crate::error::AppError;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::token::{AccountToken, sha256_hex};
use crate::ledger::{AccountId, EntryKind, ServiceId, Timestamp, time::NEVER};
use crate::store::{AccountFilter, GrantRequest, Idempotency};

const MAX_PAGE: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only accounts of this service (technical name).
    service: Option<String>,
    /// Only accounts of this Odoo database.
    dbuuid: Option<String>,
    /// At most this many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, not {n}"
        ))),
    }
}

/// Lists accounts with their current balances.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(ListQuery),
    responses((status = 200, body = [AccountDto]), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no service of that name")))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest("offset must not be negative".into()));
    }
    let filter = AccountFilter {
        service: q.service,
        dbuuid: q.dbuuid,
        limit: page_limit(q.limit, 50)?,
        offset,
    };
    let body = state
        .run(move |s| {
            let names: std::collections::HashMap<ServiceId, String> = s
                .list_services()?
                .into_iter()
                .map(|svc| (svc.id, svc.technical_name))
                .collect();
            s.list_accounts(&filter)?
                .into_iter()
                .map(|a| {
                    let figures = s.balance(a.id)?;
                    let service = names.get(&a.service_id).cloned().unwrap_or_default();
                    let companies = s.account_companies(&a)?;
                    Ok::<_, AppError>(AccountDto::new(a, service, figures, companies))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn account_id(path: web::Path<i64>) -> Result<AccountId, ApiError> {
    let id = path.into_inner();
    AccountId::new(id).ok_or_else(|| ApiError::NotFound(format!("no account {id}")))
}

/// One account with its lots and open holds.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 200, body = AccountDetail), (status = 404, body = Problem)))]
pub async fn detail(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = account_id(path)?;
    let body = state
        .run(move |s| {
            let account = s.account(id)?;
            let service = s
                .list_services()?
                .into_iter()
                .find(|svc| svc.id == account.service_id)
                .map(|svc| svc.technical_name)
                .unwrap_or_default();
            let figures = s.balance(id)?;
            let now = s.now();
            let companies = s.account_companies(&account)?;
            Ok::<_, AppError>(AccountDetail {
                account: AccountDto::new(account, service, figures, companies),
                lots: s
                    .lots(id)?
                    .into_iter()
                    .filter(|l| l.expires_at > now)
                    .map(LotDto::from)
                    .collect(),
                open_holds: s
                    .open_holds(id)?
                    .into_iter()
                    .filter(|h| h.expires_at > now)
                    .map(HoldDto::from)
                    .collect(),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    /// Only entries older than this sequence number (for paging).
    before_seq: Option<i64>,
    /// At most this many (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The account's journal, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/journal", tag = "accounts",
    params(("id" = i64, Path), JournalQuery),
    responses((status = 200, body = JournalPage), (status = 404, body = Problem)))]
pub async fn journal(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<JournalQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = account_id(path)?;
    let q = query.into_inner();
    let limit = page_limit(q.limit, 100)?;
    let entries = state
        .run(move |s| {
            s.account(id)?;
            s.journal(id, q.before_seq, limit)
        })
        .await?;
    let next_before_seq = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(HttpResponse::Ok().json(JournalPage {
        entries: entries.into_iter().map(JournalDto::from).collect(),
        next_before_seq,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    /// RFC 3339 time or `YYYY-MM-DD`; omitted: now.
    #[param(schema_with = super::rules::time_schema)]
    at: Option<String>,
}

fn parse_time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    super::rules::time(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{field} must be an RFC 3339 time or YYYY-MM-DD, not {text:?}"
        ))
    })
}

/// The balance at a past instant, from the journal.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/balance", tag = "accounts",
    params(("id" = i64, Path), BalanceQuery),
    responses((status = 200, body = BalanceAt), (status = 404, body = Problem)))]
pub async fn balance_at(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<BalanceQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = account_id(path)?;
    let at = match &query.at {
        Some(text) => Some(parse_time("at", text)?),
        None => None,
    };
    let (at, balance) = state
        .run(move |s| {
            let at = at.unwrap_or_else(|| s.now());
            Ok::<_, AppError>((at, s.balance_at(id, at)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(BalanceAt {
        at: at.to_string(),
        balance,
    }))
}

/// The `Idempotency-Key` header, if the client sent one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| super::rules::idempotency_key(k))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1-255 visible ASCII characters".into())
        })?;
    Ok(Some(key.to_owned()))
}

/// Adds credits to an account (registered on first use). With an `Idempotency-Key`
/// header a retry gets the first answer instead of a second grant.
#[utoipa::path(post, path = "/api/v1/grants", tag = "accounts", request_body = GrantBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe",
        pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")),
    responses((status = 201, body = GrantResponse), (status = 200, body = GrantResponse,
        description = "replay of an earlier request with the same Idempotency-Key"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn grant(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(req.headers())?;
    let body = body.into_inner();
    let token = Some(&body.account_token)
        .filter(|t| super::rules::account_token(t))
        .and_then(|t| AccountToken::from_raw(t))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "account_token must be 1-128 visible ASCII characters, without +".into(),
            )
        })?;
    if body
        .dbuuid
        .as_deref()
        .is_some_and(|d| !super::rules::dbuuid(d))
    {
        return Err(ApiError::BadRequest(
            "dbuuid must be 1-64 visible ASCII characters".into(),
        ));
    }
    let expires_at = match &body.expires_at {
        Some(text) => parse_time("expires_at", text)?,
        None => NEVER,
    };
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(ApiError::BadRequest(
            "description must be at most 500 characters".into(),
        ));
    }
    let request_hash = sha256_hex(&serde_json::to_string(&body).unwrap_or_default());
    let scope = format!("admin:{}", admin.0.name);
    let (value, replayed) = state
        .run(move |s| {
            let service = s.service_by_name(&body.service)?;
            let account = s.ensure_account(service.id, &token, body.dbuuid.as_deref())?;
            let req = GrantRequest {
                account_id: account.id,
                amount: body.amount.0,
                expires_at,
                origin: EntryKind::Grant,
                reference: None,
                description: body.description.as_deref(),
            };
            match &key {
                Some(key) => s.grant_idempotent(
                    &req,
                    &Idempotency {
                        scope: &scope,
                        key,
                        request_hash,
                    },
                ),
                None => Ok((
                    serde_json::to_value(s.grant(&req)?).map_err(|e| {
                        crate::ledger::LedgerError::from(crate::ledger::StorageError::failed(e))
                    })?,
                    false,
                )),
            }
        })
        .await?;
    let mut response = if replayed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(value))
}
