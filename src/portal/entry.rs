//! Entry from Odoo: the links that carry an account token.
//!
//! - `GET /iap/1/credit?dbuuid&service_name&account_token&credit[&trial][&hashed=1]`:
//!   "Buy credits" (Odoo 16-18 send the raw token; 19 sends `sha1(token)` and `hashed=1`).
//! - `GET /iap/services?tokens=…&tokens=…`: Odoo 16's "View My Services".
//!
//! The token is traded for a session cookie and the browser is sent, with `303`, to a
//! URL without it, so the token stays out of history, logs and `Referer`.

use actix_web::{HttpRequest, HttpResponse};

use super::session::{SESSION_COOKIE, Session};
use super::{Cx, Form, PageResult, PortalError, respond, see_other, session, with_cookie};
use crate::ledger::token::AccountToken;
use crate::ledger::{Account, Credits, Id, LedgerError};

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
fn start_session(cx: &Cx, accounts: &[Id], dbuuid: Option<String>, location: &str) -> HttpResponse {
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

/// `GET /iap/1/credit`.
pub async fn credit(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move { credit_page(cx).await }).await
}

async fn credit_page(cx: Cx) -> PageResult {
    let q = query(&cx)?;
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

    let account: Account = cx
        .run(move |store| {
            let service = match store.service_by_name(&service_name) {
                Ok(s) => s,
                Err(LedgerError::UnknownService(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let known = store.find_account(service.id, &token)?;
            let db = dbuuid
                .as_deref()
                .or(known.as_ref().and_then(|a| a.dbuuid.as_deref()));
            if !store.service_allows(&service, db)? {
                return Ok(None);
            }
            // A hashed link cannot carry `+disabled`: it must not re-enable an account,
            // so a known account is taken as it is.
            let account = match known {
                Some(a) if hashed => a,
                _ => store.ensure_account(service.id, &token, dbuuid.as_deref())?,
            };
            Ok(Some(account))
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
    Ok(start_session(
        &cx,
        &[account.id],
        account.dbuuid.clone(),
        &location,
    ))
}

/// `GET /iap/services?tokens=…`.
pub async fn services(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move { services_page(cx).await }).await
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
                    if !account.disabled
                        && store.service_allows(&service, account.dbuuid.as_deref())?
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
    let ids: Vec<Id> = accounts
        .iter()
        .filter(|a| a.dbuuid.is_none() || a.dbuuid == dbuuid)
        .map(|a| a.id)
        .collect();
    Ok(start_session(&cx, &ids, dbuuid, "/portal"))
}
