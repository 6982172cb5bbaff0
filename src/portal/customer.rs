//! The customer's pages: services, account statement, buying, orders, alert settings.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use crate::ledger::{
    Account, AccountId, Balance, Credits, JournalEntry, LedgerError, Recipient, Service,
};
use crate::pages::i18n::Lang;
use crate::pages::request::{Cx, Form, PortalError, path_id, respond, see_other, with_cookie};
use crate::pages::session::{SESSION_COOKIE, Session};
use crate::pages::{chart, csv, session};
use crate::payments::{Order, OrderId, OrderStatus, Pack, PackId};
use crate::store::AlertUpdate;
use crate::usecase::account::{self, AccountView};
use crate::usecase::contact;
use crate::usecase::purchase;

/// Journal lines per page.
const PAGE: i64 = 25;
/// At most this many alert recipients (as through the protocol).
const MAX_RECIPIENTS: usize = 50;

fn query(cx: &Cx) -> Result<Form, PortalError> {
    Form::parse(cx.here.split_once('?').map_or("", |(_, q)| q).as_bytes())
}

/// The account `id` with its service, if the session may see it.
async fn session_account(
    cx: &Cx,
    session: &Session,
    id: AccountId,
) -> Result<(Account, Service), PortalError> {
    if !session.allows(id) {
        return Err(PortalError::NotFound);
    }
    cx.run(move |s| s.accounts_with_services(&[id]))
        .await?
        .into_iter()
        .next()
        .ok_or(PortalError::NotFound)
}

fn amount(lang: Lang, c: Credits) -> String {
    lang.number(c)
}

/// A journal movement with its sign: `+10`, `−2.5`.
fn signed(lang: Lang, e: &JournalEntry) -> String {
    let magnitude = Credits::from_units(e.amount_units.unsigned_abs() as i64)
        .map(|c| lang.number(c))
        .unwrap_or_default();
    if e.amount_units < 0 {
        format!("−{magnitude}")
    } else {
        format!("+{magnitude}")
    }
}

/// `GET /portal`: the session's services.
pub async fn services(req: HttpRequest) -> HttpResponse {
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let ids = session.accounts.clone();
        let rows: Vec<(Account, Service, Balance)> = cx
            .run(move |s| {
                s.accounts_with_services(&ids)?
                    .into_iter()
                    .map(|(a, svc)| {
                        let b = s.balance(a.id)?;
                        Ok((a, svc, b))
                    })
                    .collect::<Result<Vec<_>, LedgerError>>()
            })
            .await?;
        let lang = cx.lang;
        let t = lang.t();
        let body = html! {
            h1 { (t.services_title) }
            p.sub {
                (t.services_intro)
                @if let Some(db) = &session.dbuuid { " " (t.database) " " code { (db) } "." }
            }
            div.card {
                @if rows.is_empty() {
                    p.muted { (t.no_services) }
                } @else {
                    div.scroll { table.cards {
                        thead { tr {
                            th { (t.col_service) }
                            th.num { (t.col_available) }
                            th.num { (t.col_reserved) }
                            th { (t.col_unit) }
                            th { (t.col_state) }
                            th.num { (t.col_threshold) }
                            th {}
                        } }
                        tbody {
                            @for (a, svc, b) in &rows {
                                tr {
                                    td data-label=(t.col_service) { span { strong { (svc.label) } br; span.muted { (svc.technical_name) } } }
                                    td.num data-label=(t.col_available) { strong { (amount(lang, b.available)) } }
                                    td.num data-label=(t.col_reserved) { (amount(lang, b.reserved)) }
                                    td data-label=(t.col_unit) { (svc.unit_name) }
                                    td data-label=(t.col_state) { span.badge.(if a.disabled { "disabled" } else { "active" }) { (lang.account_state(a.state, a.disabled)) } }
                                    td.num data-label=(t.col_threshold) { (amount(lang, a.alerts.threshold)) }
                                    td { a.button href=(format!("/portal/accounts/{}", a.id)) { (t.open) } }
                                }
                            }
                        }
                    } }
                }
            }
        };
        Ok(cx.page(t.services_title, Some(&session), body))
    })
    .await
}

/// The pack to preselect for an operation that lacked `needed` credits: the smallest
/// one that covers it, else the largest.
pub fn preselect(packs: &[Pack], needed: Option<Credits>) -> Option<PackId> {
    let needed = needed?;
    packs
        .iter()
        .filter(|p| p.credits >= needed)
        .min_by_key(|p| (p.credits, p.id))
        .or_else(|| packs.iter().max_by_key(|p| (p.credits, p.id)))
        .map(|p| p.id)
}

/// `GET /portal/accounts/{id}[?credit=N][&range=90][&before=SEQ]`.
pub async fn account(req: HttpRequest) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        let q = query(&cx)?;
        let range: i64 = if q.get("range") == Some("90") { 90 } else { 30 };
        let before: Option<i64> = match q.get("before") {
            None => None,
            Some(b) => Some(b.parse().ok().filter(|b: &i64| *b > 0).ok_or_else(|| {
                PortalError::BadRequest("before must be a positive number".into())
            })?),
        };
        let needed = q
            .get("credit")
            .and_then(|c| Credits::parse_exact(c).ok())
            .filter(|c| !c.is_zero());
        let (account, service) = session_account(&cx, &session, id).await?;
        let request = account::ViewRequest {
            range_days: range,
            before,
            page: PAGE,
            orders: 10,
            sms_service: cx.state.sms.rules.service.clone(),
        };
        let view = cx
            .run(move |s| account::view(s, account, service, &request).map_err(PortalError::from))
            .await?;
        let first_day = view.first_day;
        let csrf = cx.keys.csrf_token(&session.nonce);
        let body = account_body(
            &cx,
            &view,
            &csrf,
            needed,
            range,
            first_day,
            before,
            q.get("saved"),
        );
        Ok(cx.page(&view.service.label, Some(&session), body))
    })
    .await
}

#[allow(clippy::too_many_arguments)]
fn account_body(
    cx: &Cx,
    v: &AccountView,
    csrf: &str,
    needed: Option<Credits>,
    range: i64,
    first_day: i64,
    before: Option<i64>,
    saved: Option<&str>,
) -> Markup {
    let lang = cx.lang;
    let t = lang.t();
    let unit = &v.service.unit_name;
    let id = v.account.id;
    let chosen = preselect(&v.packs, needed);
    let total: i64 = v.daily.iter().map(|(_, c)| c.units()).sum();
    let total = Credits::from_units(total).unwrap_or_default();
    let base = format!("/portal/accounts/{id}");
    let keep_credit = needed.map(|n| format!("&credit={n}")).unwrap_or_default();
    let emails: Vec<&str> = v
        .account
        .alerts
        .recipients
        .iter()
        .map(|r| r.email.as_str())
        .collect();
    html! {
        h1 { (v.service.label) }
        p.sub {
            span.badge.(if v.account.disabled { "disabled" } else { "active" }) { (lang.account_state(v.account.state, v.account.disabled)) }
            " " (v.service.technical_name)
            @if let Some(db) = &v.account.dbuuid { " · " (t.database) " " code { (db) } }
            @if !v.companies.is_empty() { " · " (t.companies) " " (v.companies.join(", ")) }
        }
        @match saved {
            Some("alerts") => div.notice.ok role="status" { (t.saved_alerts) },
            Some("trial") => div.notice.ok role="status" { (t.trial_given) },
            _ => {},
        }
        @if let Some(n) = needed {
            div.notice.warn role="status" { (lang.needed_notice(&lang.number(n), &lang.number(v.balance.available), unit)) }
        }
        div.figures style="margin-bottom:16px" {
            div.figure.main { div.label { (t.available) } div.value id="available" { (amount(lang, v.balance.available)) " " span.unit { (unit) } } }
            div.figure { div.label { (t.reserved) } div.value id="reserved" { (amount(lang, v.balance.reserved)) } }
            div.figure { div.label { (t.balance) } div.value id="balance" { (amount(lang, v.balance.balance)) } }
        }

        div.card id="buy" {
            h2 { (t.buy_title) }
            @if v.trial_available {
                form method="post" action=(format!("{base}/trial")) style="margin-bottom:12px" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { (lang.trial_offer(&lang.number(v.service.trial_credits), unit)) " "
                        button.secondary type="submit" { (t.trial_button) } }
                }
            }
            @if v.packs.is_empty() {
                p.muted { (t.no_packs) }
            } @else {
                form method="post" action=(format!("{base}/orders")) {
                    input type="hidden" name="csrf" value=(csrf);
                    div.packs {
                        @for p in &v.packs {
                            label.pack {
                                input type="radio" name="pack_id" value=(p.id) required checked[chosen == Some(p.id)];
                                div.name { (p.name) }
                                div.credits { (lang.pack_line(&lang.number(p.credits), unit)) }
                                div.price { (lang.price(&p.price)) }
                                @if needed.is_some_and(|n| p.credits >= n) && chosen == Some(p.id) {
                                    div.hint { "✓ " (t.recommended) }
                                }
                            }
                        }
                    }
                    button type="submit" id="buy-button" { (t.buy_button) }
                }
            }
        }

        div.card id="consumption" {
            h2 { (t.consumption_title) }
            div.tabs {
                a.on[range == 30] href=(format!("{base}?range=30{keep_credit}#consumption")) { (t.days_30) }
                a.on[range == 90] href=(format!("{base}?range=90{keep_credit}#consumption")) { (t.days_90) }
            }
            p.muted { (lang.total_consumed(&lang.number(total), unit, range)) }
            (chart::daily_bars(&v.daily, first_day, range, lang, unit))
        }

        @if let Some(days) = &v.sms {
            div.card id="sms" {
                h2 { (t.sms_title) }
                @if days.is_empty() {
                    p.muted { (t.sms_none) }
                } @else {
                    div.scroll { table {
                        thead { tr {
                            th { (t.col_day) }
                            th.num { (t.col_sms_waiting) }
                            th.num { (t.col_sms_sent) }
                            th.num { (t.col_sms_delivered) }
                            th.num { (t.col_sms_failed) }
                            th.num { (t.col_sms_spent) }
                        } }
                        tbody {
                            @for d in days {
                                tr {
                                    td.nowrap { (crate::ledger::Timestamp::from_day(d.day).date()) }
                                    td.num { (d.queued) }
                                    td.num { (d.submitted) }
                                    td.num { (d.delivered) }
                                    td.num { (d.failed) }
                                    td.num { (amount(lang, Credits::from_units(d.spent).unwrap_or_default())) }
                                }
                            }
                        }
                    } }
                }
            }
        }

        div.card id="journal" {
            h2 { (t.journal_title) }
            @if v.journal.is_empty() {
                p.muted { (t.no_entries) }
            } @else {
                // On a phone each line becomes a small block (see `table.stack`).
                div.scroll { table.stack {
                    thead { tr {
                        th { (t.col_time) }
                        th { (t.col_kind) }
                        th { (t.col_description) }
                        th.num { (t.col_amount) }
                        th.num { (t.col_balance_after) }
                    } }
                    tbody {
                        @for e in &v.journal {
                            tr {
                                td.nowrap.t { (lang.time(e.effective_at)) }
                                td.k { (lang.kind(e.kind)) }
                                td.d { (e.description.as_deref().unwrap_or("—")) }
                                td.num.a.(if e.amount_units < 0 { "neg" } else { "pos" }) { (signed(lang, e)) }
                                td.num.b data-label=(t.col_balance_after) { (amount(lang, e.balance_after)) }
                            }
                        }
                    }
                } }
            }
            div.pager {
                span {
                    @if before.is_some() { a href=(format!("{base}#journal")) { (t.newest) } }
                }
                a href=(format!("{base}/journal.csv")) download id="csv-link" { (t.download_csv) }
                span {
                    @if v.more {
                        @if let Some(last) = v.journal.last() {
                            a href=(format!("{base}?before={}#journal", last.seq)) { (t.older) }
                        }
                    }
                }
            }
        }

        div.grid2 {
            div.card id="lots" {
                h2 { (t.lots_title) }
                @if v.lots.is_empty() { p.muted { (t.no_lots) } } @else {
                    div.scroll { table {
                        thead { tr { th { (t.col_origin) } th.num { (t.col_remaining) } th { (t.col_expires) } } }
                        tbody { @for l in &v.lots { tr {
                            td { (lang.kind(l.origin)) }
                            td.num { (amount(lang, l.remaining)) " / " (amount(lang, l.amount)) }
                            td.nowrap { (lang.time(l.expires_at)) }
                        } } }
                    } }
                }
            }
            div.card id="holds" {
                h2 { (t.holds_title) }
                @if v.holds.is_empty() { p.muted { (t.no_holds) } } @else {
                    div.scroll { table.cards {
                        thead { tr { th { (t.col_description) } th.num { (t.col_amount) } th { (t.col_until) } } }
                        tbody { @for h in &v.holds { tr {
                            td data-label=(t.col_description) { span { (h.description.as_deref().unwrap_or("—")) br; span.muted { (t.col_since) " " (lang.time(h.created_at)) } } }
                            td.num data-label=(t.col_amount) { (amount(lang, h.amount)) }
                            td.nowrap data-label=(t.col_until) { (lang.time(h.expires_at)) }
                        } } }
                    } }
                }
            }
        }

        @if !v.orders.is_empty() {
            div.card id="orders" {
                h2 { (t.orders_title) }
                div.scroll { table.cards {
                    thead { tr { th { (t.col_order) } th { (t.col_created) } th { (t.col_pack) } th.num { (t.col_price) } th { (t.col_status) } } }
                    tbody { @for o in &v.orders { tr {
                        td data-label=(t.col_order) { a href=(format!("/portal/orders/{}", o.id)) { "#" (o.id) } }
                        td.nowrap data-label=(t.col_created) { (lang.time(o.created_at)) }
                        td data-label=(t.col_pack) { (o.pack_name) " · " (lang.number(o.credits)) " " (unit) }
                        td.num data-label=(t.col_price) { (lang.price(&o.price)) }
                        td data-label=(t.col_status) { span.badge.(o.status.as_str()) { (lang.order_status(o.status)) } }
                    } } }
                } }
            }
        }

        div.card id="alerts" {
            h2 { (t.alerts_title) }
            p.muted { (t.alerts_help) }
            form method="post" action=(format!("{base}/alerts")) {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="threshold" { (t.threshold_label) " (" (unit) ")" }
                    input type="text" inputmode="decimal" id="threshold" name="threshold" value=(v.account.alerts.threshold.to_string());
                }
                div.field {
                    label for="emails" { (t.emails_label) }
                    textarea id="emails" name="emails" { (emails.join("\n")) }
                }
                button type="submit" id="save-alerts" { (t.save) }
            }
        }
    }
}

/// `GET /portal/accounts/{id}/journal.csv`: the whole statement, oldest first.
pub async fn journal_csv(req: HttpRequest) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        let (_, service) = session_account(&cx, &session, id).await?;
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"journal-{}-{id}.csv\"",
                    service.technical_name
                ),
            ))
            .streaming(csv::journal_stream(cx.state.store.clone(), id)))
    })
    .await
}

/// Reads a POST form and checks its CSRF token against the session.
fn post_form(cx: &Cx, session: &Session, body: &[u8]) -> Result<Form, PortalError> {
    let form = Form::parse(body)?;
    cx.check_csrf(&session.nonce, &form)?;
    Ok(form)
}

/// `POST /portal/accounts/{id}/orders` (`pack_id`): creates an order, shows it.
pub async fn create_order(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        let form = post_form(&cx, &session, &body)?;
        let (account, service) = session_account(&cx, &session, id).await?;
        let pack_id: PackId = form
            .get("pack_id")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| PortalError::Invalid(cx.lang.t().choose_pack.into()))?;
        let rules = contact::Rules::from_settings(&cx.state.settings.limits);
        let order = cx
            .run(move |s| {
                purchase::place_order(
                    s,
                    &rules,
                    &service,
                    &account,
                    pack_id,
                    session.dbuuid.as_deref(),
                )
                .map_err(PortalError::from)
            })
            .await?;
        Ok(see_other(&format!("/portal/orders/{}", order.id)))
    })
    .await
}

/// `POST /portal/accounts/{id}/alerts` (`threshold`, `emails`).
pub async fn save_alerts(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        let form = post_form(&cx, &session, &body)?;
        let (account, _) = session_account(&cx, &session, id).await?;
        let lang = cx.lang;
        let raw = form.get("threshold").unwrap_or("0");
        // French users type a decimal comma.
        let threshold = Credits::parse_exact(&raw.replace(',', "."))
            .map_err(|_| PortalError::Invalid(lang.bad_amount(raw)))?;
        let mut recipients: Vec<Recipient> = Vec::new();
        for email in form
            .get("emails")
            .unwrap_or("")
            .split(|c: char| c == '\n' || c == ',' || c == ';' || c.is_whitespace())
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if !crate::ledger::Recipient::plausible_email(email) {
                return Err(PortalError::Invalid(lang.bad_email(email)));
            }
            if recipients
                .iter()
                .any(|r| r.email.eq_ignore_ascii_case(email))
            {
                continue;
            }
            // Known recipients keep the language Odoo gave them.
            let lang_code = account
                .alerts
                .recipients
                .iter()
                .find(|r| r.email.eq_ignore_ascii_case(email))
                .map_or_else(
                    || Some(lang.odoo_code().to_owned()),
                    |r| r.lang_code.clone(),
                );
            recipients.push(Recipient {
                email: email.to_owned(),
                lang_code,
            });
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(PortalError::Invalid(
                lang.too_many_recipients(MAX_RECIPIENTS),
            ));
        }
        let update = AlertUpdate {
            threshold: Some(threshold),
            warn_me: None,
            recipients: Some(recipients),
        };
        cx.run(move |s| s.set_alerts(id, &update)).await?;
        Ok(see_other(&format!(
            "/portal/accounts/{id}?saved=alerts#alerts"
        )))
    })
    .await
}

/// `POST /portal/accounts/{id}/trial`: the service's trial credits, once per database.
pub async fn start_trial(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        post_form(&cx, &session, &body)?;
        let (account, service) = session_account(&cx, &session, id).await?;
        if account.dbuuid.is_none() {
            return Err(PortalError::Conflict(
                "the account's database is not known yet".into(),
            ));
        }
        let granted = cx
            .run(move |s| contact::claim_trial(s, &service, &account))
            .await?;
        if !granted {
            return Err(PortalError::Conflict(
                "this account or its database already received the trial credits".into(),
            ));
        }
        Ok(see_other(&format!("/portal/accounts/{id}?saved=trial")))
    })
    .await
}

/// The order `id`, if its account belongs to the session.
async fn session_order(
    cx: &Cx,
    session: &Session,
    id: OrderId,
) -> Result<(Order, Account, Service), PortalError> {
    let order = cx.run(move |s| s.order(id)).await?;
    let (account, service) = session_account(cx, session, order.account_id).await?;
    Ok((order, account, service))
}

/// `GET /portal/orders/{id}`.
pub async fn order(req: HttpRequest) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        let (order, account, service) = session_order(&cx, &session, id).await?;
        let lang = cx.lang;
        let t = lang.t();
        let csrf = cx.keys.csrf_token(&session.nonce);
        let checkout = cx
            .state
            .settings
            .payments
            .checkout_url
            .as_deref()
            .map(|url| checkout_link(url, &order));
        let title = lang.order_title(order.id);
        let body = html! {
            h1 { (title) }
            p.sub { (service.label) @if let Some(db) = &account.dbuuid { " · " (t.database) " " code { (db) } } }
            div.card {
                div.scroll { table {
                    tbody {
                        tr { th { (t.col_pack) } td { (order.pack_name) } }
                        tr { th { (t.col_credits) } td { (lang.number(order.credits)) " " (service.unit_name) } }
                        tr { th { (t.col_price) } td { strong { (lang.price(&order.price)) } } }
                        tr { th { (t.col_created) } td { (lang.time(order.created_at)) } }
                        tr { th { (t.col_status) } td { span.badge.(order.status.as_str()) id="order-status" { (lang.order_status(order.status)) } } }
                        tr { th { (t.payment_reference) } td { code { (order.reference()) } } }
                    }
                } }
            }
            @match order.status {
                OrderStatus::Pending => {
                    div.notice.info { (t.order_waiting) }
                    p {
                        @if let Some(url) = &checkout { a.button href=(url) rel="noreferrer" { (t.pay_button) } " " }
                        a.button href=(format!("/portal/orders/{}", order.id)) style="background:#eef0f4;color:#1d2433" { (t.refresh) }
                    }
                    form method="post" action=(format!("/portal/orders/{}/cancel", order.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button.danger type="submit" { (t.cancel_order) }
                    }
                },
                OrderStatus::Paid => div.notice.warn { (t.order_paid) },
                OrderStatus::Credited => div.notice.ok { (t.order_credited) },
                OrderStatus::Cancelled => div.notice.error { (t.order_cancelled) },
            }
            p { a href=(format!("/portal/accounts/{}", account.id)) { "← " (t.back_to_account) } }
        };
        Ok(cx.page(&title, Some(&session), body))
    })
    .await
}

/// `payments.checkout_url` with the order's values (each percent-encoded).
fn checkout_link(template: &str, order: &Order) -> String {
    let enc = crate::pages::layout::encode;
    template
        .replace("{order}", &order.id.to_string())
        .replace("{reference}", &enc(&order.reference()))
        .replace("{amount_minor}", &order.price.minor.to_string())
        .replace("{amount}", &enc(&order.price.amount_text('.')))
        .replace("{currency}", &enc(&order.price.currency))
}

/// `POST /portal/orders/{id}/cancel`.
pub async fn cancel_order(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |cx| async move {
        let session = cx.require_session()?;
        let id = id?;
        post_form(&cx, &session, &body)?;
        let (order, _, _) = session_order(&cx, &session, id).await?;
        let account_id = order.account_id;
        cx.run(move |s| s.cancel_order(id, Some(account_id)))
            .await?;
        Ok(see_other(&format!("/portal/orders/{id}")))
    })
    .await
}

/// `POST /portal/logout`: ends the session.
pub async fn logout(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |cx| async move {
        if let Some(session) = cx.session() {
            post_form(&cx, &session, &body)?;
            // Clearing the browser's cookie is not enough: a copy of it (a shared
            // computer, a proxy's log) must stop working too.
            let (nonce, expires) = (session.nonce.clone(), session.expires);
            cx.run(move |s| s.revoke_portal_session(&nonce, expires))
                .await?;
        }
        let t = cx.lang.t();
        let page = cx.page(
            t.sign_out,
            None,
            html! { h1 { (t.sign_out) } p { (t.signed_out) } },
        );
        Ok(with_cookie(
            page,
            &session::set_cookie(SESSION_COOKIE, "", "/", 0, cx.secure),
        ))
    })
    .await
}
