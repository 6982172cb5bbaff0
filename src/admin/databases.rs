//! `/api/v1/databases`: Odoo databases register here (from the addon's Connect button),
//! and their addon reads the sidecar's view of their accounts.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::Admin;
use crate::config::Secret;
use crate::error::AppError;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::EntryKind;
use crate::ledger::token::AccountToken;
use crate::odoo::{OdooClient, TargetPolicy, sync::read_database};
use crate::store::OdooCredentials;
use crate::usecase::contact::Rules;
use crate::usecase::databases::{self, Refreshed, refresh_database};

/// The admin, or the addon of `dbuuid` with its database token.
async fn admin_or_database(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    dbuuid: &str,
) -> Result<(), ApiError> {
    if super::is_admin(req).await {
        return Ok(());
    }
    let token = super::bearer(req).ok_or(ApiError::Unauthorized)?;
    let dbuuid = dbuuid.to_owned();
    if state
        .run(move |s| s.verify_database_token(&dbuuid, &token))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// What the addon sends to register its database.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The database's `database.uuid`.
    #[schema(min_length = 1, max_length = 64)]
    pub dbuuid: String,
    /// Odoo's base URL, as the sidecar can reach it.
    #[schema(max_length = 512, pattern = "^https?://")]
    pub url: String,
    /// Database name.
    #[schema(min_length = 1, max_length = 128)]
    pub db: String,
    #[schema(min_length = 1, max_length = 256)]
    pub login: String,
    /// An Odoo API key of `login` (used for reads; scope it to a dedicated user).
    #[schema(min_length = 1, max_length = 256)]
    pub api_key: String,
    /// The database token the sidecar gave this database, when it is registered
    /// already: without it a registered dbuuid cannot be registered again.
    #[serde(default)]
    pub database_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Company {
    pub id: i64,
    pub name: String,
}

/// A registered database.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    pub dbuuid: String,
    /// The addon's token for `/api/v1/databases/{dbuuid}/…` (shown once).
    pub database_token: String,
    pub companies: Vec<Company>,
    /// IAP accounts read from the database.
    pub accounts: usize,
}

fn odoo_timeout(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.odoo.timeout_secs)
}

fn target_policy(state: &AppState) -> TargetPolicy {
    TargetPolicy::allowing(&state.settings.odoo.allowed_hosts)
}

/// What a caller hears when its database could not be verified, whatever the reason:
/// whether the URL answered, with which status or text, would make registration a
/// probe of the sidecar's network. The reason goes to the log.
fn not_verified(dbuuid: &str, reason: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(%dbuuid, error = %reason, "registration refused: database not verified");
    ApiError::Invalid(
        "could not verify the database: check the URL, the database name, the login and \
         the API key (the sidecar's log says why)"
            .into(),
    )
}

fn checked(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if !super::rules::sized_text(value, max) {
        return Err(ApiError::BadRequest(format!(
            "{field} must be 1-{max} characters"
        )));
    }
    Ok(())
}

/// Registers an Odoo database after checking, over its JSON-RPC, that `database.uuid`
/// matches; reads its companies and IAP accounts. Authenticated by a registration secret
/// (`iap-sidecar registration-secret create NAME [--dbuuid D]`); a database registered
/// already needs its current database token too (409 without it).
#[utoipa::path(post, path = "/api/v1/databases", tag = "databases", request_body = RegisterBody,
    responses((status = 201, body = Registered), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let secret = super::bearer(&req).ok_or(ApiError::Unauthorized)?;
    let body = body.into_inner();
    let dbuuid = body.dbuuid.clone();
    if !state
        .run(move |s| s.verify_registration_secret(&secret, &dbuuid))
        .await?
    {
        return Err(ApiError::Unauthorized);
    }
    checked("dbuuid", &body.dbuuid, 64)?;
    // Before Odoo is called: a registered database is not re-read for a stranger.
    let (dbuuid, presented) = (body.dbuuid.clone(), body.database_token.clone());
    state
        .run(move |s| databases::may_register(s, &dbuuid, presented.as_deref()))
        .await?;
    checked("db", &body.db, 128)?;
    checked("login", &body.login, 256)?;
    checked("api_key", &body.api_key, 256)?;
    checked("url", &body.url, 512)?;
    if !(body.url.starts_with("http://") || body.url.starts_with("https://")) {
        return Err(ApiError::BadRequest("url must be an http(s) URL".into()));
    }
    let client = OdooClient::with_policy(
        &body.url,
        &body.db,
        &body.login,
        Secret::new(body.api_key.clone()),
        odoo_timeout(&state),
        &target_policy(&state),
    )
    .map_err(|e| not_verified(&body.dbuuid, &e))?;
    let snapshot = read_database(&client)
        .await
        .map_err(|e| not_verified(&body.dbuuid, &e))?;
    if snapshot.dbuuid != body.dbuuid {
        // Only an authenticated Odoo got this far: its uuid is no news to the caller.
        return Err(ApiError::Invalid(format!(
            "database.uuid mismatch: the request says {}, Odoo at {} says {}",
            body.dbuuid, body.url, snapshot.dbuuid
        )));
    }
    let credentials = OdooCredentials {
        dbuuid: body.dbuuid.clone(),
        url: client.url().to_owned(),
        db_name: body.db,
        login: body.login,
        api_key: Secret::new(body.api_key),
    };
    let companies = snapshot
        .companies
        .iter()
        .map(|(id, name)| Company {
            id: *id,
            name: name.clone(),
        })
        .collect();
    let accounts = snapshot.accounts.len();
    let presented = body.database_token;
    let rules = Rules::from_settings(&state.settings.limits);
    let token = state
        .run(move |s| databases::register(s, &rules, &credentials, &snapshot, presented.as_deref()))
        .await?;
    tracing::info!(dbuuid = %body.dbuuid, accounts, "database registered");
    Ok(HttpResponse::Created().json(Registered {
        dbuuid: body.dbuuid,
        database_token: token,
        companies,
        accounts,
    }))
}

/// Reads the database's companies and IAP accounts again.
#[utoipa::path(post, path = "/api/v1/databases/{dbuuid}/refresh", tag = "databases",
    params(("dbuuid" = String, Path)),
    responses((status = 200, body = Refreshed), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem,
            description = "the database could not be read")),
    security(("bearer" = [])))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let dbuuid = path.into_inner();
    admin_or_database(&req, &state, &dbuuid).await?;
    let known = dbuuid.clone();
    if state
        .run(move |s| s.database_credentials(&known))
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "database {dbuuid} is not registered"
        )));
    }
    match refresh_database(
        &state.store,
        &dbuuid,
        odoo_timeout(&state),
        &target_policy(&state),
        &Rules::from_settings(&state.settings.limits),
    )
    .await?
    {
        Ok(refreshed) => Ok(HttpResponse::Ok().json(refreshed)),
        Err(e) => Err(ApiError::Invalid(format!(
            "could not read the database: {e}"
        ))),
    }
}

/// Disconnects a database: the sidecar forgets its credentials and its copy.
#[utoipa::path(delete, path = "/api/v1/databases/{dbuuid}", tag = "databases",
    params(("dbuuid" = String, Path)),
    responses((status = 204, description = "forgotten"), (status = 401, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let dbuuid = path.into_inner();
    admin_or_database(&req, &state, &dbuuid).await?;
    let db = dbuuid.clone();
    if state.run(move |s| s.delete_database(&db)).await? {
        tracing::info!(%dbuuid, "database disconnected");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!(
            "database {dbuuid} is not registered"
        )))
    }
}

/// Registered databases with their companies.
#[utoipa::path(get, path = "/api/v1/databases", tag = "databases",
    responses((status = 200, description = "registered databases"), (status = 401, body = Problem)))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let databases = state.run(|s| s.list_databases()).await?;
    Ok(HttpResponse::Ok().json(databases))
}

/// One database: companies, and credits consumed per company through restricted accounts.
#[utoipa::path(get, path = "/api/v1/databases/{dbuuid}", tag = "databases",
    params(("dbuuid" = String, Path)),
    responses((status = 200, description = "the database"), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let dbuuid = path.into_inner();
    admin_or_database(&req, &state, &dbuuid).await?;
    let db = dbuuid.clone();
    let (info, consumption) = state
        .run(move |s| {
            let info = s.list_databases()?.into_iter().find(|d| d.dbuuid == db);
            Ok::<_, AppError>((info, s.company_consumption(&db)?))
        })
        .await?;
    let info =
        info.ok_or_else(|| ApiError::NotFound(format!("database {dbuuid} is not registered")))?;
    Ok(HttpResponse::Ok().json(json!({"database": info, "company_consumption": consumption})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountsQuery {
    #[schema(max_items = 1000)]
    pub accounts: Vec<AccountRef>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    pub token: String,
    pub service: String,
}

/// The sidecar's view of a batch of this database's accounts (the addon's developer-mode
/// fields): balances, lots, last consumption, portal link.
#[utoipa::path(post, path = "/api/v1/databases/{dbuuid}/accounts", tag = "databases",
    params(("dbuuid" = String, Path)), request_body = AccountsQuery,
    responses((status = 200, description = "keyed by token"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn accounts(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AccountsQuery>,
) -> Result<HttpResponse, ApiError> {
    let dbuuid = path.into_inner();
    admin_or_database(&req, &state, &dbuuid).await?;
    let body = body.into_inner();
    if body.accounts.len() > 1000 {
        return Err(ApiError::BadRequest(
            "at most 1000 accounts per call".into(),
        ));
    }
    let public_url = state.public_url.clone();
    let out = state
        .run(move |s| {
            let mut out = Map::new();
            for item in body.accounts {
                let Some(token) = AccountToken::from_raw(&item.token) else {
                    continue;
                };
                let Ok(service) = s.service_by_name(&item.service) else {
                    continue;
                };
                let Some(account) = s.find_account(service.id, &token)? else {
                    continue;
                };
                // A database sees only its own accounts.
                if account.dbuuid.as_deref().is_some_and(|d| d != dbuuid) {
                    continue;
                }
                let figures = s.balance(account.id)?;
                let now = s.now();
                let lots: Vec<Value> = s
                    .lots(account.id)?
                    .into_iter()
                    .filter(|l| l.expires_at > now)
                    .map(|l| json!({"remaining": l.remaining, "expires_at": l.expires_at}))
                    .collect();
                let last = s
                    .journal(account.id, None, 200)?
                    .into_iter()
                    .find(|e| e.kind == EntryKind::Capture)
                    .map(|e| e.effective_at);
                let portal_url = format!(
                    "{public_url}/iap/1/credit?dbuuid={dbuuid}&service_name={}&account_token={}&hashed=1",
                    service.technical_name,
                    token.sha1_hex()
                );
                out.insert(
                    item.token,
                    json!({
                        "balance": figures.balance,
                        "reserved": figures.reserved,
                        "available": figures.available,
                        "lots": lots,
                        "last_consumption_at": last,
                        "companies": s.account_companies(&account)?,
                        "portal_url": portal_url,
                    }),
                );
            }
            Ok::<_, AppError>(Value::Object(out))
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
