//! The browser faces' request machinery: the context a page handler gets ([`Cx`]:
//! state, language, session, signing keys, CSRF), forms, the one error type of pages
//! ([`PortalError`]) and the one place it becomes a readable page, and response helpers
//! (security headers, redirects, cookies).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use crate::error::AppError;
use crate::http::AppState;
use crate::ledger::{LedgerError, StorageError, Timestamp};
use crate::pages::i18n::Lang;
use crate::pages::layout::{self, Chrome};
use crate::pages::session;
use crate::pages::session::{Keys, LANG_COOKIE, SESSION_COOKIE, Session};
use crate::payments::PaymentError;
use crate::store::Store;
use crate::usecase::contact::ContactError;

/// Per-worker portal state: the signing keys, loaded on first use.
#[derive(Default)]
pub struct Portal {
    pub(crate) keys: tokio::sync::OnceCell<Keys>,
}

/// Every way a portal request can fail; each becomes a page in [`error_page`].
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No valid session: the portal opens from Odoo.
    #[error("no portal session")]
    NoSession,
    /// No valid provider session (provider pages).
    #[error("no provider session")]
    NoProviderSession,
    /// An entry link with an unknown or disabled token or service. No detail is shown.
    #[error("unusable entry link")]
    InvalidLink,
    /// Not there, or not the session's.
    #[error("not found")]
    NotFound,
    /// Missing or wrong CSRF token.
    #[error("CSRF token missing or wrong")]
    Csrf,
    /// A malformed request (shown as is).
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request with a value we refuse (shown as is).
    #[error("{0}")]
    Invalid(String),
    /// Not possible in the current state (shown as is).
    #[error("{0}")]
    Conflict(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// This client address opened more entry links than `limits.*` allow.
    #[error("too many requests")]
    TooManyRequests,
}

impl From<ContactError> for PortalError {
    /// An entry link that may not open the account shows no detail, like an unknown one.
    fn from(e: ContactError) -> Self {
        match e {
            ContactError::NotAvailable { .. }
            | ContactError::TooManyAccounts { .. }
            | ContactError::Insufficient { .. } => PortalError::InvalidLink,
            ContactError::Ledger(e) => e.into(),
        }
    }
}

impl From<AppError> for PortalError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Ledger(e) => e.into(),
            AppError::Storage(e) => LedgerError::Storage(e).into(),
            AppError::NotFound(_) => PortalError::NotFound,
            e @ AppError::Invalid(_) => PortalError::Invalid(e.to_string()),
            e @ AppError::Conflict(_) => PortalError::Conflict(e.to_string()),
        }
    }
}

impl From<LedgerError> for PortalError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::UnknownAccount | LedgerError::UnknownService(_) => PortalError::NotFound,
            LedgerError::InvalidAmount(_)
            | LedgerError::Invalid(_)
            | LedgerError::InvalidExpiry(_) => PortalError::Invalid(e.to_string()),
            LedgerError::Storage(e @ StorageError::Unavailable(_)) => {
                PortalError::Unavailable(e.cause().to_string())
            }
            LedgerError::Storage(e) => PortalError::Internal(e.cause().to_string()),
            other => PortalError::Conflict(other.to_string()),
        }
    }
}

impl From<PaymentError> for PortalError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound(_) => PortalError::NotFound,
            PaymentError::Conflict(m) => PortalError::Conflict(m),
            PaymentError::Invalid(m) => PortalError::Invalid(m),
            PaymentError::Ledger(e) => e.into(),
        }
    }
}

impl From<crate::usecase::account::ViewError> for PortalError {
    fn from(e: crate::usecase::account::ViewError) -> Self {
        use crate::usecase::account::ViewError;
        match e {
            ViewError::Ledger(e) => e.into(),
            ViewError::Payment(e) => e.into(),
            ViewError::App(e) => e.into(),
        }
    }
}

impl From<crate::usecase::purchase::PurchaseError> for PortalError {
    fn from(e: crate::usecase::purchase::PurchaseError) -> Self {
        use crate::usecase::purchase::PurchaseError;
        match e {
            PurchaseError::Contact(e) => e.into(),
            PurchaseError::Payment(e) => e.into(),
        }
    }
}

impl PortalError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            PortalError::NoSession | PortalError::NoProviderSession => StatusCode::UNAUTHORIZED,
            PortalError::InvalidLink | PortalError::Csrf => StatusCode::FORBIDDEN,
            PortalError::NotFound => StatusCode::NOT_FOUND,
            PortalError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PortalError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PortalError::Conflict(_) => StatusCode::CONFLICT,
            PortalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PortalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PortalError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

pub(crate) type PageResult = Result<HttpResponse, PortalError>;

/// A decoded `application/x-www-form-urlencoded` body or query string.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Form, PortalError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
            .map(Form)
            .map_err(|_| PortalError::BadRequest("the form or query string is malformed".into()))
    }

    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }
}

/// What a portal handler works with: the store, the keys, the language, the cookies.
pub(crate) struct Cx {
    pub state: web::Data<AppState>,
    pub keys: Keys,
    pub lang: Lang,
    /// Cookies are marked `Secure` when the public origin is https.
    pub secure: bool,
    /// Path and query of this request (where the language switch comes back to).
    pub here: String,
    /// The browser says the request comes from a page of this site, or from the user
    /// (typed, bookmark): `Sec-Fetch-Site: same-origin` or `none`. Entry links widen a
    /// session only then (see `entry::start_session`).
    pub same_origin: bool,
    pub(crate) cookies: String,
    /// The customer session: authentic, current, and not logged out.
    pub(crate) session: Option<Session>,
}

impl Cx {
    /// Builds the context, loading the signing key on the worker's first request.
    pub(crate) async fn new(req: &HttpRequest) -> Result<Cx, (Lang, PortalError)> {
        let cookies = req
            .headers()
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("; ");
        let lang = session::cookie_value(&cookies, LANG_COOKIE)
            .and_then(Lang::parse)
            .unwrap_or_else(|| {
                req.headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map_or(Lang::En, Lang::from_accept_language)
            });
        let internal = |m: &str| (lang, PortalError::Internal(m.to_owned()));
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| internal("application state missing"))?;
        let portal = req
            .app_data::<web::Data<Portal>>()
            .cloned()
            .ok_or_else(|| internal("portal state missing"))?;
        let keys = portal
            .keys
            .get_or_try_init(|| async {
                let (store, state) = (state.store.clone(), state.clone());
                let keys = web::block(move || Keys::load(&state.settings.portal, &store))
                    .await
                    .map_err(|e| PortalError::Internal(e.to_string()))??;
                Ok::<_, PortalError>(keys)
            })
            .await
            .map_err(|e| (lang, e))?
            .clone();
        let here = match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
        let same_origin = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "same-origin" || v == "none");
        // A signed cookie proves what it grants, not that its session is still open: a
        // logout lists the session's nonce, and a listed cookie opens nothing.
        let session = match session::cookie_value(&cookies, SESSION_COOKIE)
            .and_then(|c| keys.open_session(c, state.store.now()))
        {
            Some(s) => {
                let store = state.store.clone();
                let nonce = s.nonce.clone();
                let revoked = web::block(move || store.portal_session_revoked(&nonce))
                    .await
                    .map_err(|e| (lang, PortalError::Internal(e.to_string())))?
                    .map_err(|e| (lang, e.into()))?;
                (!revoked).then_some(s)
            }
            None => None,
        };
        Ok(Cx {
            secure: state.public_url.starts_with("https://"),
            state,
            keys,
            lang,
            here,
            same_origin,
            cookies,
            session,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.state.store.now()
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        session::cookie_value(&self.cookies, name)
    }

    /// The customer session, if the cookie is authentic, current and not logged out.
    pub fn session(&self) -> Option<Session> {
        self.session.clone()
    }

    pub fn require_session(&self) -> Result<Session, PortalError> {
        self.session().ok_or(PortalError::NoSession)
    }

    /// Refuses a POST whose form lacks the session's CSRF token.
    pub fn check_csrf(&self, nonce: &str, form: &Form) -> Result<(), PortalError> {
        if self.keys.csrf_ok(nonce, form.get("csrf")) {
            Ok(())
        } else {
            Err(PortalError::Csrf)
        }
    }

    /// Runs blocking store calls off the async workers.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, PortalError>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<PortalError> + Send + 'static,
    {
        let store = self.state.store.clone();
        web::block(move || f(&store).map_err(Into::into))
            .await
            .map_err(|e| PortalError::Internal(e.to_string()))?
    }

    /// Session lifetime in seconds.
    pub fn session_ttl_secs(&self) -> i64 {
        i64::try_from(self.state.settings.portal.session_ttl_hours)
            .unwrap_or(12)
            .saturating_mul(3600)
    }

    pub(crate) fn chrome<'a>(
        &'a self,
        customer_csrf: Option<&'a str>,
        provider_csrf: Option<&'a str>,
    ) -> Chrome<'a> {
        Chrome {
            lang: self.lang,
            here: &self.here,
            customer_csrf,
            provider_csrf,
        }
    }

    /// A 200 HTML page; with the customer session's chrome when `session` is given.
    pub fn page(&self, title: &str, session: Option<&Session>, body: Markup) -> HttpResponse {
        let csrf = session.map(|s| self.keys.csrf_token(&s.nonce));
        html_response(
            StatusCode::OK,
            layout::page(&self.chrome(csrf.as_deref(), None), title, body),
        )
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// `303 See Other` to a path of this site.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Headers every portal answer carries: no caching of account data, no framing, no
/// script or third-party content, no token in `Referer`.
pub(crate) fn harden(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        // A handler's own choice (the entry redirect's `no-referrer`) wins.
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Turns a handler's result into the answer: the page, or the error page.
pub(crate) async fn respond<F, Fut>(req: HttpRequest, handler: F) -> HttpResponse
where
    F: FnOnce(Cx) -> Fut,
    Fut: std::future::Future<Output = PageResult>,
{
    let response = match Cx::new(&req).await {
        Ok(cx) => {
            let lang = cx.lang;
            let here = cx.here.clone();
            let session_csrf = cx.session().map(|s| cx.keys.csrf_token(&s.nonce));
            match handler(cx).await {
                Ok(response) => response,
                Err(e) => error_page(lang, &here, session_csrf.as_deref(), &e),
            }
        }
        Err((lang, e)) => error_page(lang, req.path(), None, &e),
    };
    harden(response)
}

/// The one place where portal errors become pages.
pub(crate) fn error_page(
    lang: Lang,
    here: &str,
    session_csrf: Option<&str>,
    e: &PortalError,
) -> HttpResponse {
    let t = lang.t();
    let (title, text, detail): (&str, &str, Option<&str>) = match e {
        PortalError::NoSession => (t.err_session_title, t.err_session, None),
        PortalError::NoProviderSession => (t.err_provider_title, t.err_provider, None),
        PortalError::InvalidLink => (t.err_link_title, t.err_link, None),
        PortalError::NotFound => (t.err_not_found_title, t.err_not_found, None),
        PortalError::Csrf => (t.err_csrf_title, t.err_csrf, None),
        PortalError::BadRequest(m) | PortalError::Invalid(m) => {
            (t.err_input_title, t.nothing_changed, Some(m))
        }
        PortalError::Conflict(m) => (t.err_conflict_title, t.nothing_changed, Some(m)),
        PortalError::Unavailable(m) => {
            tracing::warn!(error = %m, "portal: database unavailable");
            (t.err_unavailable_title, t.err_unavailable, None)
        }
        // "Busy, try again in a moment" says what the visitor needs to know.
        PortalError::TooManyRequests => (t.err_unavailable_title, t.err_unavailable, None),
        PortalError::Internal(m) => {
            tracing::error!(error = %m, "portal request failed");
            (t.err_internal_title, t.err_internal, None)
        }
    };
    let chrome = Chrome {
        lang,
        here,
        customer_csrf: session_csrf,
        provider_csrf: None,
    };
    let body = html! {
        h1 { (title) }
        @if let Some(detail) = detail {
            div.notice.error role="alert" { (detail) }
        }
        p { (text) }
        @if matches!(e, PortalError::NoProviderSession) {
            p { a.button href="/portal/provider/login" { (t.sign_in) } }
        } @else if session_csrf.is_some() {
            p { a.button href="/portal" { (t.nav_services) } }
        }
    };
    html_response(e.status(), layout::page(&chrome, title, body))
}

/// Adds a `Set-Cookie` header.
pub(crate) fn with_cookie(mut response: HttpResponse, cookie: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Parses an id from the path (`/portal/accounts/{id}`) into the id type it names;
/// anything else is not found.
pub(crate) fn path_id<T: std::str::FromStr>(req: &HttpRequest) -> Result<T, PortalError> {
    req.match_info()
        .get("id")
        .and_then(|s| s.parse::<T>().ok())
        .ok_or(PortalError::NotFound)
}
