//! The operator's console: server-rendered pages (the portal's look, English and French)
//! where an operator, signed in with an admin token, does what the CLI and the admin API
//! do — services, credits, orders, alerts, Odoo databases, admin tokens — and reads the
//! audit log of every such action.
//!
//! Sign-in trades an admin token for a random session secret in an HttpOnly,
//! SameSite=Strict cookie; the database keeps only its hash, so signing out, expiry and
//! revoking the token end the session on the server. Every form carries a CSRF token
//! derived from the session's nonce with the portal's signing key. Each handler calls the
//! same store functions as the CLI and the admin API, then writes one audit line.
//! Errors become pages in one place ([`ConsoleError`] → [`error_page`]).

mod pages;
mod texts;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::error::AppError;
use crate::ledger::LedgerError;
use crate::ledger::token::random_hex;
use crate::pages::i18n::Lang;
use crate::pages::layout::{STYLE, encode};
use crate::pages::request::{Cx, Form, PortalError, harden, html_response};
use crate::pages::session::LANG_COOKIE;
use crate::payments::PaymentError;
use crate::store::{ConsoleSession, Store};
use texts::Texts;

/// The session cookie: a random secret whose hash names a `console_sessions` row.
pub const SESSION_COOKIE: &str = "iap_console";
/// The sign-in form's anonymous CSRF nonce.
const LOGIN_COOKIE: &str = "iap_console_login";
/// How long a console session lasts.
pub const SESSION_HOURS: i64 = 12;
const PATH: &str = "/console";

/// Registers `/` and the console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/console", web::get().to(pages::overview))
        .route("/console/login", web::get().to(login_form))
        .route("/console/login", web::post().to(login))
        .route("/console/logout", web::post().to(logout))
        .route("/console/lang", web::get().to(switch_language))
        .route("/console/services", web::get().to(pages::services))
        .route("/console/services", web::post().to(pages::create_service))
        .route(
            "/console/services/{name}/rotate-key",
            web::post().to(pages::rotate_key),
        )
        .route(
            "/console/services/{name}/trial",
            web::post().to(pages::set_trial),
        )
        .route(
            "/console/services/{name}/databases",
            web::post().to(pages::set_databases),
        )
        .route(
            "/console/services/{name}/packs",
            web::post().to(pages::create_pack),
        )
        .route(
            "/console/services/{name}/packs/{id}",
            web::post().to(pages::toggle_pack),
        )
        .route("/console/accounts", web::get().to(pages::accounts))
        .route("/console/accounts/{id}", web::get().to(pages::account))
        .route(
            "/console/accounts/{id}/journal.csv",
            web::get().to(pages::journal_csv),
        )
        .route(
            "/console/accounts/{id}/grant",
            web::post().to(pages::grant_account),
        )
        .route("/console/grants", web::post().to(pages::grant))
        .route("/console/orders", web::get().to(pages::orders))
        .route(
            "/console/orders/{id}/confirm",
            web::post().to(pages::confirm_order),
        )
        .route(
            "/console/orders/{id}/cancel",
            web::post().to(pages::cancel_order),
        )
        .route("/console/alerts", web::get().to(pages::alerts))
        .route(
            "/console/alerts/{id}/retry",
            web::post().to(pages::retry_alert),
        )
        .route("/console/databases", web::get().to(pages::databases))
        .route(
            "/console/databases/{dbuuid}/refresh",
            web::post().to(pages::refresh_database),
        )
        .route(
            "/console/databases/{dbuuid}/release",
            web::post().to(pages::release_database),
        )
        .route("/console/tokens", web::get().to(pages::tokens))
        .route("/console/tokens", web::post().to(pages::create_token))
        .route(
            "/console/tokens/{name}/revoke",
            web::post().to(pages::revoke_token),
        )
        .route("/console/audit", web::get().to(pages::audit_page));
}

/// Every way a console request can fail; each becomes a page in [`error_page`].
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No current session on a page: sent to the sign-in form.
    #[error("no console session")]
    SignInFirst,
    /// No current session on a form: refused.
    #[error("no console session")]
    NoSession,
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// The store's and the domain's errors read as the portal reads them (the same pages
/// machinery), then in the console's words.
macro_rules! through_portal {
    ($($from:ty),+) => {$(
        impl From<$from> for ConsoleError {
            fn from(e: $from) -> Self {
                PortalError::from(e).into()
            }
        }
    )+};
}

through_portal!(AppError, LedgerError, PaymentError);

impl From<PortalError> for ConsoleError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::BadRequest(m) => ConsoleError::BadRequest(m),
            PortalError::Invalid(m) => ConsoleError::Invalid(m),
            PortalError::Conflict(m) => ConsoleError::Conflict(m),
            PortalError::NotFound => ConsoleError::NotFound,
            PortalError::Csrf => ConsoleError::Csrf,
            PortalError::Unavailable(m) => ConsoleError::Unavailable(m),
            PortalError::Internal(m) => ConsoleError::Internal(m),
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignInFirst => StatusCode::SEE_OTHER,
            ConsoleError::NoSession => StatusCode::UNAUTHORIZED,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

type PageResult = Result<HttpResponse, ConsoleError>;

/// What a console handler works with: the portal's context (store, signing keys,
/// language, cookies) and, once checked, the operator's session.
pub(crate) struct Ccx {
    pub cx: Cx,
    pub req: HttpRequest,
}

/// A signed-in operator.
pub(crate) struct Operator {
    pub session: ConsoleSession,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// The cookie's secret (sign-out ends its row).
    secret: String,
}

impl Operator {
    pub fn actor(&self) -> String {
        self.session.actor()
    }
}

impl Ccx {
    pub fn lang(&self) -> Lang {
        self.cx.lang
    }

    pub fn t(&self) -> &'static Texts {
        texts::of(self.cx.lang)
    }

    /// Runs blocking store calls off the async workers.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, ConsoleError>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ConsoleError> + Send + 'static,
    {
        let store = self.cx.state.store.clone();
        web::block(move || f(&store).map_err(Into::into))
            .await
            .map_err(|e| ConsoleError::Internal(e.to_string()))?
    }

    fn csrf_for(&self, nonce: &str) -> String {
        self.cx.keys.csrf_token(&format!("console:{nonce}"))
    }

    /// The current operator, or `missing` (a page sends to sign-in, a form is refused).
    async fn operator(&self, missing: ConsoleError) -> Result<Operator, ConsoleError> {
        let Some(secret) = self
            .cx
            .cookie(SESSION_COOKIE)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
        else {
            return Err(missing);
        };
        let lookup = secret.clone();
        let Some(session) = self.run(move |s| s.console_session(&lookup)).await? else {
            return Err(missing);
        };
        Ok(Operator {
            csrf: self.csrf_for(&session.csrf_nonce),
            session,
            secret,
        })
    }

    /// The operator of a page (GET).
    pub async fn viewer(&self) -> Result<Operator, ConsoleError> {
        self.operator(ConsoleError::SignInFirst).await
    }

    /// The operator of a form (POST), with the form once its CSRF token is checked.
    pub async fn poster(&self, body: &[u8]) -> Result<(Operator, Form), ConsoleError> {
        let operator = self.operator(ConsoleError::NoSession).await?;
        let form = Form::parse(body)?;
        let given = form.get("csrf").unwrap_or("");
        if !crate::ledger::token::constant_time_eq(&operator.csrf, given) {
            return Err(ConsoleError::Csrf);
        }
        Ok((operator, form))
    }

    /// The query string, decoded.
    pub fn query(&self) -> Result<Form, ConsoleError> {
        Ok(Form::parse(self.req.query_string().as_bytes())?)
    }

    /// A 200 page in the console's chrome.
    pub fn page(&self, op: &Operator, title: &str, body: Markup) -> HttpResponse {
        html_response(StatusCode::OK, self.shell(Some(op), title, body))
    }

    fn shell(&self, op: Option<&Operator>, title: &str, body: Markup) -> Markup {
        shell(self.cx.lang, self.req.path(), op, title, body)
    }

    /// Cookie attributes: the console's path only, never sent cross-site.
    fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        format!(
            "{name}={value}; Path={PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
            max_age.max(0),
            if self.cx.secure { "; Secure" } else { "" }
        )
    }
}

/// Extra rules on top of the portal's style sheet: the navigation bar.
const CONSOLE_STYLE: &str = r#"
nav.console{max-width:1040px;margin:0 auto;padding:0 16px 8px;display:flex;flex-wrap:wrap;gap:4px 14px}
nav.console a{color:var(--accent);text-decoration:none;font-size:14px;padding:2px 0}
nav.console a.on{color:var(--ink);font-weight:650;border-bottom:2px solid var(--accent)}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:end}
.row .field{margin:0}
table.figs td,table.figs th{text-align:right}
table.figs td:first-child,table.figs th:first-child{text-align:left}
"#;

/// A navigation entry's label, picked from the texts of the page's language.
type NavLabel = fn(&Texts) -> &'static str;

const NAV: &[(&str, NavLabel)] = &[
    ("/console", |t| t.nav_overview),
    ("/console/services", |t| t.nav_services),
    ("/console/accounts", |t| t.nav_accounts),
    ("/console/orders", |t| t.nav_orders),
    ("/console/alerts", |t| t.nav_alerts),
    ("/console/databases", |t| t.nav_databases),
    ("/console/tokens", |t| t.nav_tokens),
    ("/console/audit", |t| t.nav_audit),
];

fn shell(lang: Lang, here: &str, op: Option<&Operator>, title: &str, body: Markup) -> Markup {
    let t = texts::of(lang);
    let other = lang.other();
    let back = if here.starts_with(PATH) { here } else { PATH };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                // No icon to fetch: the browser would otherwise ask for /favicon.ico.
                link rel="icon" href="data:,";
                title { (title) " · " (t.brand) }
                style { (PreEscaped(STYLE)) (PreEscaped(CONSOLE_STYLE)) }
            }
            body {
                header {
                    div.top {
                        a.brand href=(PATH) { (t.brand) }
                        @if let Some(op) = op {
                            span.muted { (op.session.token_name) }
                        }
                        a href=(format!("/console/lang?to={}&next={}", other.code(), encode(back)))
                            hreflang=(other.code()) lang=(other.code()) { (t.switch_to) }
                        @if let Some(op) = op {
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button.linkbtn type="submit" { (t.sign_out) }
                            }
                        }
                    }
                    @if op.is_some() {
                        nav.console {
                            @for (href, label) in NAV {
                                @let on = if *href == PATH { here == PATH } else { here.starts_with(href) };
                                a.on[on] href=(href) { (label(t)) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Turns a handler's result into the answer: the page, or the error page.
pub(crate) async fn respond<F, Fut>(req: HttpRequest, handler: F) -> HttpResponse
where
    F: FnOnce(Ccx) -> Fut,
    Fut: std::future::Future<Output = PageResult>,
{
    let path = req.path().to_owned();
    let response = match Cx::new(&req).await {
        Ok(cx) => {
            let lang = cx.lang;
            match handler(Ccx { cx, req }).await {
                Ok(response) => response,
                Err(e) => error_page(lang, &path, &e),
            }
        }
        Err((lang, e)) => error_page(lang, &path, &e.into()),
    };
    harden(response)
}

/// The one place where console errors become answers.
fn error_page(lang: Lang, here: &str, e: &ConsoleError) -> HttpResponse {
    let t = texts::of(lang);
    let (title, detail): (&str, Option<&str>) = match e {
        ConsoleError::SignInFirst => {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .finish();
        }
        ConsoleError::NoSession => (t.err_session, None),
        ConsoleError::Csrf => (t.err_csrf, None),
        ConsoleError::NotFound => (t.err_not_found, None),
        ConsoleError::BadRequest(m) | ConsoleError::Invalid(m) | ConsoleError::Conflict(m) => {
            (t.err_input, Some(m.as_str()))
        }
        ConsoleError::Unavailable(m) => {
            tracing::warn!(error = %m, "console: database unavailable");
            (t.err_unavailable, None)
        }
        ConsoleError::Internal(m) => {
            tracing::error!(error = %m, "console request failed");
            (t.err_internal, None)
        }
    };
    let body = html! {
        h1 { (title) }
        @if let Some(detail) = detail {
            div.notice.error role="alert" { (detail) }
        }
        p { (t.nothing_changed) }
        p { a.button href=(PATH) { (t.back_to_console) } }
    };
    html_response(e.status(), shell(lang, here, None, title, body))
}

/// `303 See Other` to a console path.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn with_cookie(mut response: HttpResponse, cookie: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in page; its CSRF token comes from a random nonce in a short-lived cookie,
/// since there is no session yet.
fn login_page(c: &Ccx, status: StatusCode, error: bool) -> HttpResponse {
    let t = c.t();
    let nonce =
        c.cx.cookie(LOGIN_COOKIE)
            .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .map_or_else(|| random_hex(16), str::to_owned);
    let csrf = c.cx.keys.csrf_token(&format!("console-login:{nonce}"));
    let body = html! {
        h1 { (t.sign_in_title) }
        div.card style="max-width:560px" {
            @if error { div.notice.error role="alert" { (t.bad_token) } }
            p.muted { (t.sign_in_help) }
            form method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="token" { (t.admin_token) }
                    input type="password" id="token" name="token" autocomplete="off" required;
                }
                button type="submit" { (t.sign_in) }
            }
        }
    };
    let page = html_response(status, c.shell(None, t.sign_in_title, body));
    with_cookie(page, &c.cookie(LOGIN_COOKIE, &nonce, 3600))
}

/// `GET /console/login`.
async fn login_form(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        if c.viewer().await.is_ok() {
            return Ok(see_other(PATH));
        }
        Ok(login_page(&c, StatusCode::OK, false))
    })
    .await
}

/// `POST /console/login` (`token`): an admin token opens a session.
async fn login(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |c| async move {
        let form = Form::parse(&body)?;
        let nonce = c.cx.cookie(LOGIN_COOKIE).ok_or(ConsoleError::Csrf)?;
        if !c
            .cx
            .keys
            .csrf_ok(&format!("console-login:{nonce}"), form.get("csrf"))
        {
            return Err(ConsoleError::Csrf);
        }
        let token = form.get("token").unwrap_or("").to_owned();
        if token.is_empty() || token.len() > 256 {
            return Ok(login_page(&c, StatusCode::UNAUTHORIZED, true));
        }
        let ttl = SESSION_HOURS * 3600;
        let Some((secret, _)) = c.run(move |s| s.open_console_session(&token, ttl)).await? else {
            return Ok(login_page(&c, StatusCode::UNAUTHORIZED, true));
        };
        let response = with_cookie(see_other(PATH), &c.cookie(SESSION_COOKIE, &secret, ttl));
        Ok(with_cookie(response, &c.cookie(LOGIN_COOKIE, "", 0)))
    })
    .await
}

/// `POST /console/logout`: ends the session on the server, then forgets the cookie.
async fn logout(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let (secret, actor) = (op.secret.clone(), op.actor());
        c.run(move |s| s.end_console_session(&secret, &actor))
            .await?;
        Ok(with_cookie(
            see_other("/console/login"),
            &c.cookie(SESSION_COOKIE, "", 0),
        ))
    })
    .await
}

/// `GET /console/lang?to=fr&next=/console/...`: remembers the language, goes back.
async fn switch_language(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let query = c.query()?;
        let lang = query
            .get("to")
            .and_then(Lang::parse)
            .ok_or_else(|| ConsoleError::BadRequest("unknown language".into()))?;
        // Only back into the console: never an open redirect.
        let next = query
            .get("next")
            .filter(|n| {
                (*n == PATH || n.starts_with("/console/") || n.starts_with("/console?"))
                    && !n.contains(['\\', '\r', '\n'])
            })
            .unwrap_or(PATH);
        let cookie = crate::pages::session::set_cookie(
            LANG_COOKIE,
            lang.code(),
            "/",
            365 * 86_400,
            c.cx.secure,
        );
        Ok(with_cookie(see_other(next), &cookie))
    })
    .await
}

/// An id from the path, as the id type it names; anything else is not found.
pub(crate) fn path_id<T: std::str::FromStr>(req: &HttpRequest) -> Result<T, ConsoleError> {
    req.match_info()
        .get("id")
        .and_then(|s| s.parse::<T>().ok())
        .ok_or(ConsoleError::NotFound)
}

/// A text segment from the path (a service name, a dbuuid, a token name).
pub(crate) fn path_text(req: &HttpRequest, name: &str) -> Result<String, ConsoleError> {
    req.match_info()
        .get(name)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned)
        .ok_or(ConsoleError::NotFound)
}
