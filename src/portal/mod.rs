//! The customer portal: server-rendered HTML pages where an Odoo database's users see
//! their services, balances, consumption and statement, buy credits and set the
//! low-credit alert; and the provider pages behind the service key.
//!
//! Entry is by a link from Odoo carrying an account token (`/iap/1/credit`,
//! `/iap/services`): the token is traded for a signed session cookie listing the accounts
//! it may see, and the browser is sent on to a URL without the token. Every form carries
//! a CSRF token derived from its session. Errors become readable pages with the right
//! status, in one place (`pages::request`).

mod customer;
mod entry;
mod provider;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::pages::i18n::Lang;
use crate::pages::session;
use crate::pages::session::LANG_COOKIE;

use crate::pages::request::{Form, Portal, PortalError, respond, see_other};

/// Registers the portal's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(Portal::default()))
        .route("/iap/1/credit", web::get().to(entry::credit))
        .route("/iap/services", web::get().to(entry::services))
        .route("/portal", web::get().to(customer::services))
        .route("/portal/lang", web::get().to(switch_language))
        .route("/portal/logout", web::post().to(customer::logout))
        .route("/portal/accounts/{id}", web::get().to(customer::account))
        .route(
            "/portal/accounts/{id}/journal.csv",
            web::get().to(customer::journal_csv),
        )
        .route(
            "/portal/accounts/{id}/orders",
            web::post().to(customer::create_order),
        )
        .route(
            "/portal/accounts/{id}/alerts",
            web::post().to(customer::save_alerts),
        )
        .route(
            "/portal/accounts/{id}/trial",
            web::post().to(customer::start_trial),
        )
        .route("/portal/orders/{id}", web::get().to(customer::order))
        .route(
            "/portal/orders/{id}/cancel",
            web::post().to(customer::cancel_order),
        )
        .route("/portal/provider", web::get().to(provider::home))
        .route(
            "/portal/provider/login",
            web::get().to(provider::login_form),
        )
        .route("/portal/provider/login", web::post().to(provider::login))
        .route("/portal/provider/logout", web::post().to(provider::logout))
        .route(
            "/portal/provider/packs",
            web::post().to(provider::create_pack),
        )
        .route(
            "/portal/provider/packs/{id}",
            web::post().to(provider::update_pack),
        )
        .route(
            "/portal/provider/trial",
            web::post().to(provider::set_trial),
        )
        .route(
            "/portal/provider/rotate-key",
            web::post().to(provider::rotate_key),
        );
}

/// `GET /portal/lang?to=fr&next=/portal/...`: remembers the language, goes back.
async fn switch_language(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move {
        let query = Form::parse(cx.here.split_once('?').map_or("", |(_, q)| q).as_bytes())?;
        let lang = query
            .get("to")
            .and_then(Lang::parse)
            .ok_or_else(|| PortalError::BadRequest("unknown language".into()))?;
        // Only back into the portal: never an open redirect. The value becomes a
        // `Location` header, so it must be visible ASCII (a decoded `%7F`, `%00` or `é`
        // cannot be sent and would make the answer fail).
        let next = query
            .get("next")
            .filter(|n| {
                (*n == "/portal" || n.starts_with("/portal/") || n.starts_with("/portal?"))
                    && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            })
            .unwrap_or("/portal");
        let mut response = see_other(next);
        let cookie = session::set_cookie(LANG_COOKIE, lang.code(), "/", 365 * 86_400, cx.secure);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(response)
    })
    .await
}
