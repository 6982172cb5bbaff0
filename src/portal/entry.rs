//! Entry from Odoo: the links that carry an account token.
//!
//! - `GET /iap/1/credit?dbuuid&service_name&account_token&credit[&trial][&hashed=1]`:
//!   "Buy credits" (Odoo 16-18 send the raw token; 19 sends `sha1(token)` and `hashed=1`).
//! - `GET /iap/services?tokens=…&tokens=…`: Odoo 16's "View My Services".
//! - `GET /iap/1/credit?service_name&dbuuid&link`: the link of a low-credit alert e-mail,
//!   a signed account id and expiry (the sidecar keeps no token to put in it).
//!
//! The token is traded for a session cookie and the browser is sent, with `303`, to a
//! URL without it, so the token stays out of history, logs and `Referer`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::AppState;
use crate::ledger::token::AccountToken;
use crate::ledger::{Account, AccountId, Credits, LedgerError};
use crate::pages::request::{Cx, Form, PageResult, PortalError, respond, see_other, with_cookie};
use crate::pages::session;
use crate::pages::session::{SESSION_COOKIE, Session};
use crate::usecase::contact::{self, Caller, Contact, Rules};

/// At most this many tokens in one `/iap/services` link.
const MAX_TOKENS: usize = 50;

fn query(cx: &Cx) -> Result<Form, PortalError> {
    Form::parse(cx.here.split_once('?').map_or("", |(_, q)| q).as_bytes())
}

/// Odoo sends `hashed=1`; accept the spellings a person might type too.
fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true" | "True" | "yes"))
}

/// Sets the session cookie and sends the browser on to `location`.
///
/// A link that arrives from another site (Odoo's "Buy credits", but also any page that
/// makes the browser open a link for *its* account: login CSRF) starts a new session
/// holding only the link's accounts, so an account planted that way never sits beside the
/// victim's own. Only a link opened from the portal itself or by the user
/// (`Sec-Fetch-Site: same-origin` or `none`) widens a current session of the same database.
fn start_session(
    cx: &Cx,
    accounts: &[AccountId],
    dbuuid: Option<String>,
    location: &str,
) -> HttpResponse {
    let expires = cx.now().micros() / 1_000_000 + cx.session_ttl_secs();
    let current = cx.session().filter(|_| cx.same_origin);
    let session = Session::merged(current, accounts, dbuuid, expires);
    let cookie = session::set_cookie(
        SESSION_COOKIE,
        &cx.keys.seal_session(&session),
        "/",
        cx.session_ttl_secs(),
        cx.secure,
    );
    // No Referer at all from the page that carried the token.
    let mut response = with_cookie(see_other(location), &cookie);
    response.headers_mut().insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Entry links need no key: each client address may open only so many
/// (`limits.unauthenticated_*`).
fn rate_limit(req: &HttpRequest) -> Result<(), PortalError> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state
            .limiter
            .check(req)
            .map_err(|_| PortalError::TooManyRequests),
        None => Ok(()),
    }
}

/// `GET /iap/1/credit`.
pub async fn credit(req: HttpRequest) -> HttpResponse {
    let limited = rate_limit(&req);
    respond(req, |cx| async move {
        limited?;
        credit_page(cx).await
    })
    .await
}

async fn credit_page(cx: Cx) -> PageResult {
    let q = query(&cx)?;
    if let Some(sealed) = q.get("link") {
        return alert_link(&cx, sealed).await;
    }
    let service_name = q
        .get("service_name")
        .ok_or(PortalError::InvalidLink)?
        .to_owned();
    let raw = q.get("account_token").ok_or(PortalError::InvalidLink)?;
    let token = if truthy(q.get("hashed")) {
        AccountToken::from_sha1_hex(raw)
    } else {
        AccountToken::from_raw(raw)
    }
    .ok_or(PortalError::InvalidLink)?;
    let dbuuid = q.get("dbuuid").filter(|d| d.len() <= 64).map(str::to_owned);
    let hashed = truthy(q.get("hashed"));
    // Odoo sends the credits an operation lacked as a float (`12.5`, `0`).
    let needed = q
        .get("credit")
        .and_then(|c| c.parse::<f64>().ok())
        .and_then(|c| Credits::from_f64(c).ok())
        .filter(|c| !c.is_zero());

    let rules = Rules::from_settings(&cx.state.settings.limits);
    let dbuuid_named = dbuuid.clone().filter(|d| !d.is_empty());
    let account: Account = cx
        .run(move |store| {
            let service = match store.service_by_name(&service_name) {
                Ok(s) => s,
                Err(LedgerError::UnknownService(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            // The link is no authentication: it may open an account (so credits can be
            // bought for it) but never fixes its database.
            let c = Contact {
                caller: if hashed {
                    Caller::HashedLink
                } else {
                    Caller::BuyLink
                },
                service: &service,
                token: &token,
                dbuuid: dbuuid.as_deref(),
                wants: None,
            };
            contact::contact(store, &rules, &c).map_err(PortalError::from)
        })
        .await?
        .filter(|a| !a.disabled)
        .ok_or(PortalError::InvalidLink)?;

    // The page offers trial credits by itself when the database can still have them,
    // so `trial` needs no passing on; `credit` preselects a pack.
    let location = match needed {
        Some(n) => format!("/portal/accounts/{}?credit={n}", account.id),
        None => format!("/portal/accounts/{}", account.id),
    };
    // The session belongs to the account's database, or, for an account that has none
    // yet, to the one the link names: an order placed from it binds the account there
    // once paid (`contact::purchase_database`).
    let session_db = account.dbuuid.clone().or(dbuuid_named);
    Ok(start_session(&cx, &[account.id], session_db, &location))
}

/// An alert e-mail's link: opens the account it was signed for, while the link lasts and
/// the account may use the portal (not disabled, its service still open to its database).
async fn alert_link(cx: &Cx, sealed: &str) -> PageResult {
    let link = cx
        .keys
        .open_alert_link(sealed, cx.now())
        .ok_or(PortalError::InvalidLink)?;
    let account: Account = cx
        .run(move |store| {
            let account = match store.account(link.account) {
                Ok(a) => a,
                Err(LedgerError::UnknownAccount) => return Ok(None),
                Err(e) => return Err(e),
            };
            let service = store.service(account.service_id)?;
            Ok(store
                .service_allows(&service, account.dbuuid.as_deref())?
                .then_some(account))
        })
        .await?
        .filter(|a| !a.disabled)
        .ok_or(PortalError::InvalidLink)?;
    Ok(start_session(
        cx,
        &[account.id],
        account.dbuuid.clone(),
        &format!("/portal/accounts/{}", account.id),
    ))
}

/// `GET /iap/services?tokens=…`.
pub async fn services(req: HttpRequest) -> HttpResponse {
    let limited = rate_limit(&req);
    respond(req, |cx| async move {
        limited?;
        services_page(cx).await
    })
    .await
}

async fn services_page(cx: Cx) -> PageResult {
    let q = query(&cx)?;
    let tokens: Vec<AccountToken> = q
        .all("tokens")
        .filter(|t| !t.is_empty())
        .take(MAX_TOKENS)
        .map(AccountToken::from_raw)
        .collect::<Option<Vec<_>>>()
        .ok_or(PortalError::InvalidLink)?;
    if tokens.is_empty() {
        return Err(PortalError::InvalidLink);
    }
    let accounts: Vec<Account> = cx
        .run(move |store| {
            let mut found = Vec::new();
            for token in &tokens {
                if token.is_disabled() {
                    continue;
                }
                for (account, service) in store.accounts_by_token(token)? {
                    if !account.disabled && contact::allowed(store, &service, Some(&account), None)?
                    {
                        found.push(account);
                    }
                }
            }
            Ok::<_, LedgerError>(found)
        })
        .await?;
    if accounts.is_empty() {
        return Err(PortalError::InvalidLink);
    }
    // A session belongs to one Odoo database: the first one named. Accounts whose
    // database was never told (registered by the operator) come along with their token.
    let dbuuid = accounts.iter().find_map(|a| a.dbuuid.clone());
    let ids: Vec<AccountId> = accounts
        .iter()
        .filter(|a| a.dbuuid.is_none() || a.dbuuid == dbuuid)
        .map(|a| a.id)
        .collect();
    Ok(start_session(&cx, &ids, dbuuid, "/portal"))
}
