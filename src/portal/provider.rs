//! Provider pages: a service's provider signs in with the service key and manages its
//! packs, trial credits and key, and sees consumption and revenue per database.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::token::random_hex;
use crate::ledger::{Credits, Service, Timestamp};
use crate::pages::request::{
    Cx, Form, PortalError, html_response, path_id, respond, see_other, with_cookie,
};
use crate::pages::session::{LOGIN_COOKIE, PROVIDER_COOKIE, ProviderSession};
use crate::pages::{layout, session};
use crate::payments::{Pack, PackInput, Price};
use crate::store::DatabaseUsage;

const PATH: &str = "/portal/provider";

fn query(cx: &Cx) -> Result<Form, PortalError> {
    Form::parse(cx.here.split_once('?').map_or("", |(_, q)| q).as_bytes())
}

/// The provider session and its service, if the cookie is valid and the service still
/// has the key the session was opened with.
async fn provider(cx: &Cx) -> Result<(ProviderSession, Service), PortalError> {
    let session = cx
        .cookie(PROVIDER_COOKIE)
        .and_then(|c| cx.keys.open_provider(c, cx.now()))
        .ok_or(PortalError::NoProviderSession)?;
    let id = session.service_id;
    let service = cx
        .run(move |s| s.service(id))
        .await
        .map_err(|_| PortalError::NoProviderSession)?;
    if !session.matches_key(&service.key_hash) {
        return Err(PortalError::NoProviderSession);
    }
    // Logged out: a copy of the cookie opens nothing (as for customer sessions).
    let nonce = session.nonce.clone();
    if cx.run(move |s| s.portal_session_revoked(&nonce)).await? {
        return Err(PortalError::NoProviderSession);
    }
    Ok((session, service))
}

fn provider_page(
    cx: &Cx,
    session: &ProviderSession,
    title: &str,
    status: StatusCode,
    body: Markup,
) -> HttpResponse {
    let csrf = cx.keys.csrf_token(&session.nonce);
    let chrome = layout::Chrome {
        lang: cx.lang,
        here: &cx.here,
        customer_csrf: None,
        provider_csrf: Some(&csrf),
    };
    html_response(status, layout::page(&chrome, title, body))
}

/// A new provider session for `service` and the `Set-Cookie` value carrying it.
fn new_session(cx: &Cx, service: &Service) -> (ProviderSession, String) {
    let ttl = cx.session_ttl_secs();
    let session = ProviderSession::new(
        service.id,
        &service.key_hash,
        cx.now().micros() / 1_000_000 + ttl,
    );
    let cookie = session::set_cookie(
        PROVIDER_COOKIE,
        &cx.keys.seal_provider(&session),
        PATH,
        ttl,
        cx.secure,
    );
    (session, cookie)
}

fn login_body(cx: &Cx, csrf: &str, error: bool) -> Markup {
    let t = cx.lang.t();
    html! {
        h1 { (t.provider_title) }
        div.card style="max-width:520px" {
            @if error { div.notice.error role="alert" { (t.bad_key) } }
            p.muted { (t.provider_login_help) }
            form method="post" action="/portal/provider/login" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="key" { (t.key_label) }
                    input type="password" id="key" name="key" autocomplete="off" required;
                }
                button type="submit" { (t.sign_in) }
            }
        }
    }
}

/// The login form's CSRF token comes from a random nonce in a short-lived cookie, since
/// there is no session yet.
fn login_page(cx: &Cx, status: StatusCode, error: bool) -> HttpResponse {
    let nonce = cx
        .cookie(LOGIN_COOKIE)
        .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(|| random_hex(16), str::to_owned);
    let csrf = cx.keys.csrf_token(&format!("login:{nonce}"));
    let chrome = layout::Chrome {
        lang: cx.lang,
        here: &cx.here,
        customer_csrf: None,
        provider_csrf: None,
    };
    let page = html_response(
        status,
        layout::page(
            &chrome,
            cx.lang.t().provider_title,
            login_body(cx, &csrf, error),
        ),
    );
    with_cookie(
        page,
        &session::set_cookie(LOGIN_COOKIE, &nonce, PATH, 3600, cx.secure),
    )
}

/// `GET /portal/provider/login`.
pub async fn login_form(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move {
        if provider(&cx).await.is_ok() {
            return Ok(see_other(PATH));
        }
        Ok(login_page(&cx, StatusCode::OK, false))
    })
    .await
}

/// `POST /portal/provider/login` (`key`).
pub async fn login(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        let form = Form::parse(&body)?;
        let nonce = cx.cookie(LOGIN_COOKIE).ok_or(PortalError::Csrf)?;
        if !cx.keys.csrf_ok(&format!("login:{nonce}"), form.get("csrf")) {
            return Err(PortalError::Csrf);
        }
        let key = form.get("key").unwrap_or("").to_owned();
        if key.is_empty() || key.len() > 256 {
            return Ok(login_page(&cx, StatusCode::UNAUTHORIZED, true));
        }
        let Some(service) = cx.run(move |s| s.service_by_key(&key)).await? else {
            return Ok(login_page(&cx, StatusCode::UNAUTHORIZED, true));
        };
        let (_, cookie) = new_session(&cx, &service);
        let response = with_cookie(see_other(PATH), &cookie);
        Ok(with_cookie(
            response,
            &session::set_cookie(LOGIN_COOKIE, "", PATH, 0, cx.secure),
        ))
    })
    .await
}

/// `POST /portal/provider/logout`.
pub async fn logout(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        if let Ok((session, _)) = provider(&cx).await {
            cx.check_csrf(&session.nonce, &Form::parse(&body)?)?;
            let (nonce, expires) = (session.nonce.clone(), session.expires);
            cx.run(move |s| s.revoke_portal_session(&nonce, expires))
                .await?;
        }
        Ok(with_cookie(
            see_other("/portal/provider/login"),
            &session::set_cookie(PROVIDER_COOKIE, "", PATH, 0, cx.secure),
        ))
    })
    .await
}

/// Reads a provider POST: session, service and a CSRF-checked form.
async fn provider_post(
    cx: &Cx,
    body: &[u8],
) -> Result<(ProviderSession, Service, Form), PortalError> {
    let (session, service) = provider(cx).await?;
    let form = Form::parse(body)?;
    cx.check_csrf(&session.nonce, &form)?;
    Ok((session, service, form))
}

fn credits_field(
    form: &Form,
    name: &str,
    lang: crate::pages::i18n::Lang,
) -> Result<Credits, PortalError> {
    let raw = form.get(name).unwrap_or("");
    Credits::parse_exact(&raw.replace(',', "."))
        .map_err(|_| PortalError::Invalid(lang.bad_amount(raw)))
}

fn pack_input(form: &Form, lang: crate::pages::i18n::Lang) -> Result<PackInput, PortalError> {
    let price = Price::parse(
        form.get("price").unwrap_or(""),
        form.get("currency").unwrap_or(""),
    )
    .map_err(|e| PortalError::Invalid(e.to_string()))?;
    Ok(PackInput {
        name: form.get("name").unwrap_or("").to_owned(),
        credits: credits_field(form, "credits", lang)?,
        price,
        active: form.get("active").is_some(),
    })
}

/// `GET /portal/provider[?days=30|90|all]`.
pub async fn home(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move {
        let (session, service) = match provider(&cx).await {
            Ok(found) => found,
            Err(PortalError::NoProviderSession) => return Ok(see_other("/portal/provider/login")),
            Err(e) => return Err(e),
        };
        let q = query(&cx)?;
        let days: Option<i64> = match q.get("days") {
            Some("all") => None,
            Some("90") => Some(90),
            _ => Some(30),
        };
        let since = days.map_or(Timestamp::from_micros(0), |d| {
            Timestamp::from_micros(cx.now().micros() - d * MICROS_PER_DAY)
        });
        let id = service.id;
        let (packs, usage) = cx
            .run(move |s| Ok::<_, PortalError>((s.packs(id, false)?, s.service_usage(id, since)?)))
            .await?;
        let body = home_body(
            &cx,
            &session,
            &service,
            &packs,
            &usage,
            days,
            q.get("saved").is_some(),
            None,
        );
        Ok(provider_page(
            &cx,
            &session,
            cx.lang.t().provider_title,
            StatusCode::OK,
            body,
        ))
    })
    .await
}

#[allow(clippy::too_many_arguments)]
fn home_body(
    cx: &Cx,
    session: &ProviderSession,
    service: &Service,
    packs: &[Pack],
    usage: &[DatabaseUsage],
    days: Option<i64>,
    saved: bool,
    new_key: Option<&str>,
) -> Markup {
    let lang = cx.lang;
    let t = lang.t();
    let csrf = cx.keys.csrf_token(&session.nonce);
    let unit = &service.unit_name;
    let total_consumed = usage.iter().fold(Credits::ZERO, |sum, u| {
        sum.checked_add(u.consumed).unwrap_or(sum)
    });
    let total_sold = usage.iter().fold(Credits::ZERO, |sum, u| {
        sum.checked_add(u.sold).unwrap_or(sum)
    });
    let mut revenue: Vec<Price> = Vec::new();
    for p in usage.iter().flat_map(|u| &u.revenue) {
        match revenue.iter_mut().find(|r| r.currency == p.currency) {
            Some(r) => r.minor = r.minor.saturating_add(p.minor),
            None => revenue.push(p.clone()),
        }
    }
    let prices = |list: &[Price]| {
        list.iter()
            .map(|p| lang.price(p))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    html! {
        h1 { (t.provider_title) " · " (service.label) }
        p.sub { code { (service.technical_name) } " · " (unit) }
        @if saved { div.notice.ok role="status" { (t.saved) } }
        @if let Some(key) = new_key {
            div.notice.warn role="alert" {
                p { strong { (t.new_key_shown) } }
                p.key id="new-key" { (key) }
            }
        }

        div.card id="usage" {
            h2 { (t.usage_title) }
            div.tabs {
                a.on[days == Some(30)] href="/portal/provider?days=30#usage" { (t.days_30) }
                a.on[days == Some(90)] href="/portal/provider?days=90#usage" { (t.days_90) }
                a.on[days.is_none()] href="/portal/provider?days=all#usage" { (t.period_all) }
            }
            div.scroll { table {
                thead { tr {
                    th { (t.database) }
                    th.num { (t.col_accounts) }
                    th.num { (t.col_consumed) " (" (unit) ")" }
                    th.num { (t.col_captures) }
                    th.num { (t.col_sold) " (" (unit) ")" }
                    th.num { (t.col_orders) }
                    th.num { (t.col_revenue) }
                } }
                tbody {
                    @for u in usage { tr {
                        td { @if let Some(db) = &u.dbuuid { code { (db) } } @else { span.muted { (t.unknown_db) } } }
                        td.num { (u.accounts) }
                        td.num { (lang.number(u.consumed)) }
                        td.num { (u.captures) }
                        td.num { (lang.number(u.sold)) }
                        td.num { (u.orders) }
                        td.num { (prices(&u.revenue)) }
                    } }
                    tr {
                        th { (t.total) }
                        th.num { (usage.iter().map(|u| u.accounts).sum::<i64>()) }
                        th.num { (lang.number(total_consumed)) }
                        th.num { (usage.iter().map(|u| u.captures).sum::<i64>()) }
                        th.num { (lang.number(total_sold)) }
                        th.num { (usage.iter().map(|u| u.orders).sum::<i64>()) }
                        th.num { (prices(&revenue)) }
                    }
                }
            } }
        }

        div.card id="packs" {
            h2 { (t.packs_title) }
            div.scroll { table {
                thead { tr {
                    th { (t.col_name) } th { (t.col_credits) } th { (t.col_price) } th { (t.col_currency) } th { (t.col_on_sale) } th {}
                } }
                tbody {
                    @for p in packs {
                        @let form_id = format!("pack-{}", p.id);
                        tr {
                            td { input type="text" form=(form_id) name="name" value=(p.name) required; }
                            td { input type="text" inputmode="decimal" form=(form_id) name="credits" value=(p.credits.to_string()) size="8" required; }
                            td { input type="text" inputmode="decimal" form=(form_id) name="price" value=(p.price.amount_text('.')) size="8" required; }
                            td { input type="text" form=(form_id) name="currency" value=(p.price.currency) size="3" maxlength="3" required; }
                            td { input type="checkbox" form=(form_id) name="active" checked[p.active]; }
                            td {
                                form id=(form_id) method="post" action=(format!("/portal/provider/packs/{}", p.id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.secondary type="submit" { (t.update) }
                                }
                            }
                        }
                    }
                    tr {
                        td { input type="text" form="pack-new" name="name" placeholder=(t.col_name) required; }
                        td { input type="text" inputmode="decimal" form="pack-new" name="credits" placeholder="100" size="8" required; }
                        td { input type="text" inputmode="decimal" form="pack-new" name="price" placeholder="10.00" size="8" required; }
                        td { input type="text" form="pack-new" name="currency" value="EUR" size="3" maxlength="3" required; }
                        td { input type="checkbox" form="pack-new" name="active" checked; }
                        td {
                            form id="pack-new" method="post" action="/portal/provider/packs" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (t.add_pack) }
                            }
                        }
                    }
                }
            } }
        }

        div.grid2 {
            div.card id="trial" {
                h2 { (t.trial_title) }
                form method="post" action="/portal/provider/trial" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.field {
                        label for="trial_credits" { (t.trial_credits_label) }
                        input type="text" inputmode="decimal" id="trial_credits" name="trial_credits" value=(service.trial_credits.to_string());
                    }
                    div.field {
                        label for="trial_days" { (t.trial_days_label) }
                        input type="number" min="0" max="3650" id="trial_days" name="trial_days" value=(service.trial_days);
                    }
                    button type="submit" { (t.save) }
                }
            }
            div.card id="key" {
                h2 { (t.key_title) }
                p.muted { (t.rotate_help) }
                form method="post" action="/portal/provider/rotate-key" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" { (t.rotate) }
                }
            }
        }
    }
}

/// `POST /portal/provider/packs`.
pub async fn create_pack(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        let (_, service, form) = provider_post(&cx, &body).await?;
        let input = pack_input(&form, cx.lang)?;
        let id = service.id;
        cx.run(move |s| s.create_pack(id, &input)).await?;
        Ok(see_other("/portal/provider?saved=1#packs"))
    })
    .await
}

/// `POST /portal/provider/packs/{id}`: edit, or take off sale (`active` unchecked).
pub async fn update_pack(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let pack_id = path_id(&req);
    respond(req, |cx| async move {
        let (_, service, form) = provider_post(&cx, &body).await?;
        let pack_id = pack_id?;
        let input = pack_input(&form, cx.lang)?;
        let id = service.id;
        cx.run(move |s| s.update_pack(id, pack_id, &input)).await?;
        Ok(see_other("/portal/provider?saved=1#packs"))
    })
    .await
}

/// `POST /portal/provider/trial` (`trial_credits`, `trial_days`).
pub async fn set_trial(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        let (_, service, form) = provider_post(&cx, &body).await?;
        let credits = credits_field(&form, "trial_credits", cx.lang)?;
        let raw_days = form.get("trial_days").unwrap_or("0");
        let days: i32 = raw_days
            .parse()
            .ok()
            .filter(|d| (0..=3650).contains(d))
            .ok_or_else(|| PortalError::Invalid(cx.lang.bad_amount(raw_days)))?;
        let id = service.id;
        cx.run(move |s| s.set_service_trial(id, credits, days))
            .await?;
        Ok(see_other("/portal/provider?saved=1#trial"))
    })
    .await
}

/// `POST /portal/provider/rotate-key`: a new key, shown on this answer only; the
/// session moves to the new key, every other session of the old key ends.
pub async fn rotate_key(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        let (_, service, _) = provider_post(&cx, &body).await?;
        let name = service.technical_name.clone();
        let (service, key) = cx
            .run(move |s| crate::usecase::service_keys::rotate(s, &name))
            .await?;
        let id = service.id;
        let since = Timestamp::from_micros(cx.now().micros() - 30 * MICROS_PER_DAY);
        let (packs, usage) = cx
            .run(move |s| Ok::<_, PortalError>((s.packs(id, false)?, s.service_usage(id, since)?)))
            .await?;
        // This session follows the new key; every other one ended with the old key.
        let (session, cookie) = new_session(&cx, &service);
        let body = home_body(
            &cx,
            &session,
            &service,
            &packs,
            &usage,
            Some(30),
            false,
            Some(&key),
        );
        let page = provider_page(
            &cx,
            &session,
            cx.lang.t().provider_title,
            StatusCode::OK,
            body,
        );
        Ok(with_cookie(page, &cookie))
    })
    .await
}
