//! The console's pages and forms. Each form handler: session and CSRF first
//! ([`Ccx::poster`]), then the store call the CLI and the admin API make, in its
//! `_audited` form: the audit line is written in the action's own transaction (a line
//! exists if and only if the action committed), then `303` back to the page (or a page
//! showing a new secret once).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::{Ccx, ConsoleError, Operator, path_id, path_text, respond, see_other};
use crate::ledger::token::{AccountToken, random_hex, sha256_hex};
use crate::ledger::{AccountId, Credits, EntryKind, LedgerError, Service, ServiceId, time::NEVER};
use crate::pages::chart;
use crate::pages::i18n::Lang;
use crate::pages::request::{Form, html_response};
use crate::payments::{Confirmation, OrderStatus, PackInput, PaymentError, Price};
use crate::store::{
    AccountFilter, AlertFilter, AuditLineId, AuditRecord, GrantRequest, Idempotency, NewService,
    OrderFilter, Statement, StatementRequest,
};

use crate::ledger::time::MICROS_PER_DAY;

fn num(lang: Lang, c: Credits) -> String {
    lang.number(c)
}

/// A positive amount of credits from a form field.
fn amount(form: &Form, name: &str) -> Result<Credits, ConsoleError> {
    let raw = form.get(name).unwrap_or("");
    let value = Credits::parse_exact(&raw.replace(',', "."))
        .map_err(|_| ConsoleError::Invalid(format!("{raw:?} is not an amount of credits")))?;
    if value <= Credits::ZERO {
        return Err(ConsoleError::Invalid("the amount must be positive".into()));
    }
    Ok(value)
}

/// A new idempotency key for a grant form: sending that form twice grants once.
fn grant_key() -> String {
    format!("console-{}", random_hex(12))
}

/// The audit line of `action` on `target` by the operator, for the store to write in
/// the action's transaction.
fn audit(op: &Operator, action: &'static str, target: String, detail: String) -> AuditRecord {
    AuditRecord {
        actor: op.actor(),
        action,
        target,
        detail,
    }
}

/// `GET /`: what this server is, with its doors.
pub async fn home(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let t = c.t();
        let body = html! {
            h1 { "iap-sidecar" }
            p.sub { (t.home_intro) }
            div.card {
                table {
                    tbody {
                        tr { td { a href="/console" { (t.home_console) } } td.muted { (t.home_console_help) } }
                        tr { td { a href="/portal" { (t.home_portal) } } td.muted { (t.home_portal_help) } }
                        tr { td { a href="/portal/provider/login" { (t.home_provider) } } td.muted { (t.home_provider_help) } }
                        tr { td { a href="/api/v1/openapi.json" { (t.home_api) } } td.muted { code { "/api/v1" } } }
                        tr { td { a href="/health" { (t.home_health) } } td.muted { code { "/health" } } }
                        tr { td { a href="/metrics" { (t.home_metrics) } } td.muted { code { "/metrics" } } }
                    }
                }
            }
        };
        Ok(html_response(
            actix_web::http::StatusCode::OK,
            c.shell(None, "iap-sidecar", body),
        ))
    })
    .await
}

/// `GET /console`: figures, the consumption chart, what needs attention.
pub async fn overview(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let (o, failing, pending) = c
            .run(|s| {
                let o = s.console_overview()?;
                let failing = s.list_alerts(AlertFilter::Failing, 10)?;
                let pending = s
                    .orders(&OrderFilter {
                        account_id: None,
                        status: Some(OrderStatus::Pending),
                        limit: 10,
                        offset: 0,
                    })?;
                Ok::<_, ConsoleError>((o, failing, pending))
            })
            .await?;
        let (t, lang) = (c.t(), c.lang());
        let today = c.cx.now().micros().div_euclid(MICROS_PER_DAY);
        let body = html! {
            h1 { (t.nav_overview) }
            div.card.scroll {
                table.figs id="figures" {
                    thead { tr { th {} th { (t.today) } th { (t.days_30) } th { (t.all_time) } } }
                    tbody {
                        tr { td { (t.sold) }
                            td.num data-figure="sold-today" { (num(lang, o.today.sold)) }
                            td.num data-figure="sold-30" { (num(lang, o.days_30.sold)) }
                            td.num data-figure="sold-all" { (num(lang, o.all_time.sold)) } }
                        tr { td { (t.consumed) }
                            td.num data-figure="consumed-today" { (num(lang, o.today.consumed)) }
                            td.num data-figure="consumed-30" { (num(lang, o.days_30.consumed)) }
                            td.num data-figure="consumed-all" { (num(lang, o.all_time.consumed)) } }
                        tr { td { (t.held) }
                            td.num data-figure="held-today" { (num(lang, o.today.held)) }
                            td.num data-figure="held-30" { (num(lang, o.days_30.held)) }
                            td.num data-figure="held-all" { (num(lang, o.all_time.held)) } }
                    }
                }
            }
            div.card {
                h2 { (t.consumption_chart) }
                @if o.daily.is_empty() {
                    p.muted { (t.no_consumption) }
                }
                @for (service, values) in &o.daily {
                    h3 { (service.label) " (" (service.technical_name) ")" }
                    (chart::daily_bars(values, today - 29, 30, lang, &service.unit_name))
                }
            }
            div.grid2 {
                div.card {
                    h2 { (t.near_threshold) }
                    @if o.near_threshold.is_empty() { p.muted { (t.none) } } @else {
                        table { thead { tr { th { (t.col_account) } th { (t.col_service) } th.num { (t.col_available) } th.num { (t.col_threshold) } } }
                            tbody { @for (a, s) in &o.near_threshold {
                                tr { td { a href=(format!("/console/accounts/{}", a.id)) { "#" (a.id) " " (a.token_hint) "…" } }
                                    td { (s.technical_name) }
                                    td.num { (num(lang, a.balance.checked_sub(a.reserved).unwrap_or(Credits::ZERO))) }
                                    td.num { (num(lang, a.alerts.threshold)) } }
                            } } }
                    }
                }
                div.card {
                    h2 { (t.failing_alerts) }
                    @if failing.is_empty() { p.muted { (t.none) } } @else {
                        table { tbody { @for a in &failing {
                            tr { td { (a.recipient) } td.muted { (a.last_error.as_deref().unwrap_or("")) } }
                        } } }
                        p { a href="/console/alerts" { (t.see_all) } }
                    }
                }
                div.card {
                    h2 { (t.pending_orders) }
                    @if pending.is_empty() { p.muted { (t.none) } } @else {
                        table { tbody { @for o in &pending {
                            tr { td { "#" (o.id) } td { (o.pack_name) } td.num { (lang.price(&o.price)) } }
                        } } }
                        p { a href="/console/orders?status=pending" { (t.see_all) } }
                    }
                }
            }
        };
        Ok(c.page(&op, t.nav_overview, body))
    })
    .await
}

// ---------------------------------------------------------------- services

fn services_body(
    c: &Ccx,
    op: &Operator,
    list: &[(Service, Vec<String>, Vec<crate::payments::Pack>)],
    shown_key: Option<(&str, &str)>,
) -> Markup {
    let (t, lang) = (c.t(), c.lang());
    html! {
        h1 { (t.nav_services) }
        @if let Some((name, key)) = shown_key {
            div.notice.ok role="status" {
                p { strong { (t.new_key_for) " " (name) } }
                p.key id="shown-key" { (key) }
                p { (t.key_shown_once) }
            }
        }
        @for (s, dbs, packs) in list {
            div.card id=(format!("service-{}", s.technical_name)) {
                h2 { (s.label) " " span.muted { "(" (s.technical_name) ", " (s.unit_name) ")" } }
                div.grid2 {
                    form method="post" action=(format!("/console/services/{}/trial", s.technical_name)) {
                        input type="hidden" name="csrf" value=(op.csrf);
                        div.row {
                            div.field { label { (t.f_trial_credits) } input type="text" name="credits" value=(s.trial_credits.to_string()); }
                            div.field { label { (t.f_trial_days) } input type="number" name="days" min="0" max="3650" value=(s.trial_days); }
                            button.secondary type="submit" { (t.save) }
                        }
                    }
                    form method="post" action=(format!("/console/services/{}/databases", s.technical_name)) {
                        input type="hidden" name="csrf" value=(op.csrf);
                        div.field {
                            label { input type="radio" name="mode" value="open" checked[s.open_to_all]; " " (t.open_to_all) }
                            label { input type="radio" name="mode" value="only" checked[!s.open_to_all]; " " (t.only_listed) }
                        }
                        div.field { label { (t.f_dbuuids) } textarea name="dbuuids" { (dbs.join("\n")) } }
                        button.secondary type="submit" { (t.save) }
                    }
                }
                h3 { (t.col_packs) }
                table { tbody {
                    @for p in packs {
                        tr { td { (p.name) } td.num { (num(lang, p.credits)) } td.num { (lang.price(&p.price)) }
                            td { span.badge.active[p.active].disabled[!p.active] { (if p.active { t.on_sale } else { t.off_sale }) } }
                            td { form.inline method="post" action=(format!("/console/services/{}/packs/{}", s.technical_name, p.id)) {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button.secondary type="submit" { (if p.active { t.disable } else { t.enable }) }
                            } } }
                    }
                } }
                form method="post" action=(format!("/console/services/{}/packs", s.technical_name)) {
                    input type="hidden" name="csrf" value=(op.csrf);
                    div.row {
                        div.field { label { (t.col_name) } input type="text" name="name" required; }
                        div.field { label { (t.col_credits) } input type="text" name="credits" required; }
                        div.field { label { (t.f_price) } input type="text" name="price" required; }
                        div.field { label { (t.f_currency) } input type="text" name="currency" value="EUR" maxlength="3" required; }
                        button.secondary type="submit" { (t.add_pack) }
                    }
                }
                form method="post" action=(format!("/console/services/{}/rotate-key", s.technical_name)) style="margin-top:12px" {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button.danger type="submit" { (t.rotate_key) }
                }
            }
        }
        div.card {
            h2 { (t.new_service) }
            form method="post" action="/console/services" id="new-service" {
                input type="hidden" name="csrf" value=(op.csrf);
                div.field { label for="name" { (t.f_name) } input type="text" id="name" name="name" required; }
                div.field { label for="label" { (t.f_label) } input type="text" id="label" name="label"; }
                div.field { label for="unit" { (t.f_unit) } input type="text" id="unit" name="unit" value="Credits"; }
                div.field { label { input type="checkbox" name="integer" value="1"; " " (t.f_integer) } }
                div.row {
                    div.field { label { (t.f_trial_credits) } input type="text" name="trial_credits" value="0"; }
                    div.field { label { (t.f_trial_days) } input type="number" name="trial_days" value="0" min="0" max="3650"; }
                }
                p { button type="submit" { (t.create) } }
            }
        }
    }
}

type ServiceList = Vec<(Service, Vec<String>, Vec<crate::payments::Pack>)>;

async fn service_list(c: &Ccx) -> Result<ServiceList, ConsoleError> {
    c.run(|s| {
        let mut out = Vec::new();
        for (service, dbs) in s.services_with_databases()? {
            let packs = s
                .packs(service.id, false)
                .map_err(|e| LedgerError::from(crate::ledger::StorageError::failed(e)))?;
            out.push((service, dbs, packs));
        }
        Ok::<_, LedgerError>(out)
    })
    .await
}

/// `GET /console/services`.
pub async fn services(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let list = service_list(&c).await?;
        Ok(c.page(&op, c.t().nav_services, services_body(&c, &op, &list, None)))
    })
    .await
}

/// The services page with a new key on it, shown this once.
async fn with_shown_key(
    c: &Ccx,
    op: &Operator,
    name: &str,
    key: &str,
) -> Result<HttpResponse, ConsoleError> {
    let list = service_list(c).await?;
    Ok(c.page(
        op,
        c.t().nav_services,
        services_body(c, op, &list, Some((name, key))),
    ))
}

/// `POST /console/services`: registers a service; its key is shown once.
pub async fn create_service(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let name = form.get("name").unwrap_or("").to_owned();
        let trial_credits = match form.get("trial_credits") {
            None => Credits::ZERO,
            Some(raw) => Credits::parse_exact(&raw.replace(',', ".")).map_err(|_| {
                ConsoleError::Invalid(format!("{raw:?} is not an amount of credits"))
            })?,
        };
        let trial_days: i32 = form
            .get("trial_days")
            .unwrap_or("0")
            .parse()
            .map_err(|_| ConsoleError::Invalid("trial days must be a whole number".into()))?;
        let new = NewService {
            technical_name: name.clone(),
            label: form.get("label").unwrap_or(&name).to_owned(),
            unit_name: form.get("unit").unwrap_or("Credits").to_owned(),
            integer_balance: form.get("integer").is_some(),
            trial_credits,
            trial_days,
        };
        let line = audit(
            &op,
            "service.create",
            format!("service:{}", new.technical_name),
            String::new(),
        );
        let (service, key) = c
            .run(move |s| crate::usecase::service_keys::create_audited(s, &new, &line))
            .await?;
        with_shown_key(&c, &op, &service.technical_name, &key).await
    })
    .await
}

/// `POST /console/services/{name}/rotate-key`: a new key, shown once; the old one stops.
pub async fn rotate_key(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let name = name?;
        let line = audit(
            &op,
            "service.rotate_key",
            format!("service:{name}"),
            String::new(),
        );
        let (service, key) = c
            .run(move |s| crate::usecase::service_keys::rotate_audited(s, &name, &line))
            .await?;
        with_shown_key(&c, &op, &service.technical_name, &key).await
    })
    .await
}

/// `POST /console/services/{name}/trial` (`credits`, `days`).
pub async fn set_trial(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let name = name?;
        let raw = form.get("credits").unwrap_or("0");
        let credits = Credits::parse_exact(&raw.replace(',', "."))
            .map_err(|_| ConsoleError::Invalid(format!("{raw:?} is not an amount of credits")))?;
        let days: i32 = form
            .get("days")
            .unwrap_or("0")
            .parse()
            .map_err(|_| ConsoleError::Invalid("trial days must be a whole number".into()))?;
        let line = audit(
            &op,
            "service.trial",
            format!("service:{name}"),
            format!("{credits} credits, {days} days"),
        );
        c.run(move |s| {
            let service = s.service_by_name(&name)?;
            s.set_service_trial_audited(service.id, credits, days, &line)
        })
        .await?;
        Ok(see_other("/console/services"))
    })
    .await
}

/// `POST /console/services/{name}/databases` (`mode` = open|only, `dbuuids`).
pub async fn set_databases(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let name = name?;
        let open = match form.get("mode") {
            Some("open") => true,
            Some("only") => false,
            _ => return Err(ConsoleError::BadRequest("mode must be open or only".into())),
        };
        let dbuuids: Vec<String> = form
            .get("dbuuids")
            .unwrap_or("")
            .split(|ch: char| ch.is_whitespace() || ch == ',')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
        let detail = if open {
            "open to all".to_owned()
        } else {
            dbuuids.join(" ")
        };
        let line = audit(&op, "service.databases", format!("service:{name}"), detail);
        c.run(move |s| s.set_service_databases_audited(&name, open, &dbuuids, &line))
            .await?;
        Ok(see_other("/console/services"))
    })
    .await
}

/// `POST /console/services/{name}/packs` (`name`, `credits`, `price`, `currency`).
pub async fn create_pack(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let service_name = name?;
        let price = Price::parse(
            form.get("price").unwrap_or(""),
            form.get("currency").unwrap_or(""),
        )
        .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        let input = PackInput {
            name: form.get("name").unwrap_or("").to_owned(),
            credits: amount(&form, "credits")?,
            price,
            active: true,
        };
        let line = audit(
            &op,
            "pack.create",
            format!("service:{service_name}"),
            String::new(),
        );
        c.run(move |s| {
            let service = s.service_by_name(&service_name)?;
            s.create_pack_audited(service.id, &input, &line, |pack| {
                format!("pack {} {}", pack.id, pack.name)
            })
        })
        .await?;
        Ok(see_other("/console/services"))
    })
    .await
}

/// `POST /console/services/{name}/packs/{id}`: takes a pack off sale or puts it back.
pub async fn toggle_pack(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    let id = path_id(&req);
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let (service_name, id) = (name?, id?);
        let target = format!("service:{service_name}");
        c.run(move |s| {
            let service = s.service_by_name(&service_name)?;
            let pack = s
                .packs(service.id, false)?
                .into_iter()
                .find(|p| p.id == id)
                .ok_or_else(|| {
                    PaymentError::NotFound(format!("no pack {id} for {service_name}"))
                })?;
            let what = if pack.active { "off sale" } else { "on sale" };
            let line = audit(&op, "pack.update", target, format!("pack {id} {what}"));
            s.update_pack_audited(
                service.id,
                id,
                &PackInput {
                    name: pack.name,
                    credits: pack.credits,
                    price: pack.price,
                    active: !pack.active,
                },
                &line,
            )
        })
        .await?;
        Ok(see_other("/console/services"))
    })
    .await
}

// ---------------------------------------------------------------- accounts

fn grant_form(c: &Ccx, op: &Operator, services: &[Service]) -> Markup {
    let t = c.t();
    html! {
        div.card {
            h2 { (t.give_credits) }
            p.muted { (t.give_help) }
            form method="post" action="/console/grants" id="grant" {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="key" value=(grant_key());
                div.row {
                    div.field { label for="g-token" { (t.f_account_token) } input type="text" id="g-token" name="token" required; }
                    div.field { label for="g-service" { (t.col_service) }
                        select id="g-service" name="service" { @for s in services { option value=(s.technical_name) { (s.technical_name) } } } }
                    div.field { label for="g-amount" { (t.f_amount) } input type="text" id="g-amount" name="amount" required; }
                }
                div.row {
                    div.field { label for="g-db" { (t.f_database_opt) } input type="text" id="g-db" name="dbuuid"; }
                    div.field { label for="g-desc" { (t.f_description_opt) } input type="text" id="g-desc" name="description" maxlength="500"; }
                    button type="submit" { (t.give) }
                }
            }
        }
    }
}

/// `GET /console/accounts?q=&service=&dbuuid=`.
pub async fn accounts(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let query = c.query()?;
        let q = query.get("q").unwrap_or("").to_owned();
        let filter = AccountFilter {
            service: query.get("service").map(str::to_owned),
            dbuuid: query.get("dbuuid").map(str::to_owned),
            // A token-hint search filters in memory over a wider page.
            limit: if q.is_empty() { 100 } else { 5_000 },
            offset: 0,
        };
        let needle = q.clone();
        let (services, rows) = c
            .run(move |s| {
                let services = s.list_services()?;
                let rows: Vec<_> = s
                    .list_accounts(&filter)?
                    .into_iter()
                    .filter(|a| needle.is_empty() || a.token_hint.contains(&needle))
                    .take(100)
                    .collect();
                Ok::<_, LedgerError>((services, rows))
            })
            .await?;
        let (t, lang) = (c.t(), c.lang());
        let name_of = |id: ServiceId| {
            services
                .iter()
                .find(|s| s.id == id)
                .map_or("?", |s| s.technical_name.as_str())
        };
        let body = html! {
            h1 { (t.nav_accounts) }
            div.card {
                form method="get" action="/console/accounts" {
                    div.row {
                        div.field { label for="q" { (t.f_query) } input type="text" id="q" name="q" value=(q); }
                        div.field { label for="service" { (t.col_service) }
                            select id="service" name="service" {
                                option value="" { (t.any_service) }
                                @for s in &services { option value=(s.technical_name) selected[query.get("service") == Some(s.technical_name.as_str())] { (s.technical_name) } }
                            } }
                        div.field { label for="dbuuid" { (t.col_database) } input type="text" id="dbuuid" name="dbuuid" value=(query.get("dbuuid").unwrap_or("")); }
                        button.secondary type="submit" { (t.search) }
                    }
                }
            }
            div.card.scroll {
                table id="accounts" {
                    thead { tr { th { (t.col_account) } th { (t.col_token) } th { (t.col_service) } th { (t.col_database) } th.num { (t.col_balance) } th.num { (t.col_reserved) } th { (t.col_state) } } }
                    tbody { @for a in &rows {
                        tr { td { a href=(format!("/console/accounts/{}", a.id)) { "#" (a.id) } }
                            td { code { (a.token_hint) "…" } }
                            td { (name_of(a.service_id)) }
                            td { (a.dbuuid.as_deref().unwrap_or("")) }
                            td.num { (num(lang, a.balance)) }
                            td.num { (num(lang, a.reserved)) }
                            td { (lang.account_state(a.state, a.disabled)) } }
                    } }
                }
                @if rows.is_empty() { p.muted { (t.none) } }
            }
            (grant_form(&c, &op, &services))
        };
        Ok(c.page(&op, t.nav_accounts, body))
    })
    .await
}

/// `GET /console/accounts/{id}`: balance, lots, holds, journal, companies, grant.
pub async fn account(req: HttpRequest) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let id = id?;
        let (account, service, statement, companies) = c
            .run(move |s| {
                let account = s.account(id)?;
                let service = s.service(account.service_id)?;
                // The money in one transaction, as on the customer's page.
                let statement = s.statement(
                    id,
                    &StatementRequest {
                        before_seq: None,
                        page: 50,
                        since: None,
                    },
                )?;
                let companies = match &account.dbuuid {
                    Some(db) => s
                        .company_consumption(db)?
                        .into_iter()
                        .filter(|c| c.service == service.technical_name)
                        .collect(),
                    None => Vec::new(),
                };
                Ok::<_, crate::error::AppError>((account, service, statement, companies))
            })
            .await?;
        let Statement {
            balance,
            lots,
            holds,
            journal,
            ..
        } = statement;
        let (t, lang) = (c.t(), c.lang());
        let title = format!("{} #{}", t.col_account, account.id);
        let body = html! {
            h1 { (title) }
            p.sub { (service.label) " (" (service.technical_name) ") · " code { (account.token_hint) "…" }
                @if let Some(db) = &account.dbuuid { " · " (db) }
                " · " (lang.account_state(account.state, account.disabled)) }
            div.figures {
                div.figure.main { div.label { (t.col_available) } div.value id="available" { (num(lang, balance.available)) } }
                div.figure { div.label { (t.col_balance) } div.value { (num(lang, balance.balance)) } }
                div.figure { div.label { (t.col_reserved) } div.value { (num(lang, balance.reserved)) } }
            }
            div.card style="margin-top:16px" {
                h2 { (t.give_credits) }
                form method="post" action=(format!("/console/accounts/{}/grant", account.id)) {
                    input type="hidden" name="csrf" value=(op.csrf);
                    input type="hidden" name="key" value=(grant_key());
                    div.row {
                        div.field { label for="a-amount" { (t.f_amount) } input type="text" id="a-amount" name="amount" required; }
                        div.field { label for="a-desc" { (t.f_description_opt) } input type="text" id="a-desc" name="description" maxlength="500"; }
                        button type="submit" { (t.give) }
                    }
                }
            }
            div.grid2 {
                div.card { h2 { (t.lots) }
                    table { thead { tr { th { (t.col_origin) } th.num { (t.col_amount) } th.num { (t.col_available) } th { (t.col_expires) } } }
                        tbody { @for l in &lots { tr { td { (lang.kind(l.origin)) } td.num { (num(lang, l.amount)) } td.num { (num(lang, l.remaining)) } td { (lang.time(l.expires_at)) } } } } } }
                div.card { h2 { (t.holds) }
                    table { thead { tr { th { (t.col_created) } th.num { (t.col_amount) } th { (t.col_expires) } th { (t.col_description) } } }
                        tbody { @for h in &holds { tr { td { (lang.time(h.created_at)) } td.num { (num(lang, h.amount)) } td { (lang.time(h.expires_at)) } td { (h.description.as_deref().unwrap_or("")) } } } } } }
            }
            @if !companies.is_empty() {
                div.card { h2 { (t.company_consumption) }
                    table { tbody { @for co in &companies { tr { td { (co.company) } td.num { (num(lang, co.consumed)) } } } } } }
            }
            div.card.scroll {
                h2 { (t.journal) }
                p { a href=(format!("/console/accounts/{}/journal.csv", account.id)) { (t.journal_csv) } }
                table { thead { tr { th { (t.col_when) } th { (t.col_operation) } th { (t.col_description) } th.num { (t.col_amount) } th.num { (t.col_balance) } } }
                    tbody { @for e in &journal { tr { td.nowrap { (lang.time(e.effective_at)) } td { (lang.kind(e.kind)) } td { (e.description.as_deref().unwrap_or("")) } td.num { (e.signed_amount()) } td.num { (num(lang, e.balance_after)) } } } } }
            }
        };
        Ok(c.page(&op, &title, body))
    })
    .await
}

/// `GET /console/accounts/{id}/journal.csv`: the whole journal, oldest first, streamed
/// page by page as the portal's export is (constant memory whatever its length).
pub async fn journal_csv(req: HttpRequest) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        c.viewer().await?;
        let id = id?;
        c.run(move |s| s.account(id).map(|_| ())).await?;
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"journal-{id}.csv\""),
            ))
            .streaming(crate::pages::csv::journal_stream(
                c.cx.state.store.clone(),
                id,
            )))
    })
    .await
}

/// Whom a console grant is for: an account by id, or (service, token, database) to open.
type GrantTarget = Result<AccountId, (String, AccountToken, Option<String>)>;

/// The request a grant key is kept with (a retry with another request is refused). The
/// account reads as it did when ids were bare numbers (`Ok(7)`, not the id type's debug
/// form), so a retry that spans an upgrade still matches its first try.
fn grant_fingerprint(account: &GrantTarget, amount: Credits, description: Option<&str>) -> String {
    let target = match account {
        Ok(id) => format!("Ok({id})"),
        Err(named) => format!("Err({named:?})"),
    };
    format!("{target}|{}|{}", amount.units(), description.unwrap_or(""))
}

/// A grant through the console: idempotent per operator and form key.
async fn do_grant(
    c: &Ccx,
    op: &Operator,
    form: &Form,
    account: GrantTarget,
) -> Result<AccountId, ConsoleError> {
    let amount = amount(form, "amount")?;
    let key = form
        .get("key")
        .filter(|k| k.len() <= 255)
        .ok_or_else(|| ConsoleError::BadRequest("the form has no grant key".into()))?
        .to_owned();
    let description = form.get("description").map(str::to_owned);
    if description.as_ref().is_some_and(|d| d.len() > 500) {
        return Err(ConsoleError::Invalid("the description is too long".into()));
    }
    let request = grant_fingerprint(&account, amount, description.as_deref());
    let scope = format!("console:{}", op.session.token_name);
    let line = audit(op, "grant", String::new(), String::new());
    let account_id = c
        .run(move |s| {
            let account_id = match account {
                Ok(id) => s.account(id)?.id,
                Err((service, token, dbuuid)) => {
                    let service = s.service_by_name(&service)?;
                    s.ensure_account(service.id, &token, dbuuid.as_deref())?.id
                }
            };
            let req = GrantRequest {
                account_id,
                amount,
                expires_at: NEVER,
                origin: EntryKind::Grant,
                reference: None,
                description: description.as_deref(),
            };
            let line = AuditRecord {
                target: format!("account:{account_id}"),
                ..line
            };
            let detail = |replayed: bool| {
                format!(
                    "{amount} credits{}",
                    if replayed {
                        " (repeat, nothing granted)"
                    } else {
                        ""
                    }
                )
            };
            s.grant_idempotent_audited(
                &req,
                &Idempotency {
                    scope: &scope,
                    key: &key,
                    request_hash: sha256_hex(&request),
                },
                &line,
                &detail,
            )?;
            Ok::<_, LedgerError>(account_id)
        })
        .await?;
    Ok(account_id)
}

/// `POST /console/grants` (`token`, `service`, `amount`, `key`, optional `dbuuid`,
/// `description`): registers the account if new.
pub async fn grant(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let token = AccountToken::from_raw(form.get("token").unwrap_or("")).ok_or_else(|| {
            ConsoleError::Invalid("the account token must be 1-128 characters".into())
        })?;
        let service = form.get("service").unwrap_or("").to_owned();
        let dbuuid = form.get("dbuuid").map(str::to_owned);
        let id = do_grant(&c, &op, &form, Err((service, token, dbuuid))).await?;
        Ok(see_other(&format!("/console/accounts/{id}")))
    })
    .await
}

/// `POST /console/accounts/{id}/grant` (`amount`, `key`, optional `description`).
pub async fn grant_account(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let id = do_grant(&c, &op, &form, Ok(id?)).await?;
        Ok(see_other(&format!("/console/accounts/{id}")))
    })
    .await
}

// ---------------------------------------------------------------- orders

/// `GET /console/orders?status=`.
pub async fn orders(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let query = c.query()?;
        let status = match query.get("status") {
            None => None,
            Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| ConsoleError::BadRequest("unknown status".into()))?),
        };
        let list = c
            .run(move |s| {
                s.orders(&OrderFilter {
                    account_id: None,
                    status,
                    limit: 200,
                    offset: 0,
                })
            })
            .await?;
        let (t, lang) = (c.t(), c.lang());
        let body = html! {
            h1 { (t.nav_orders) }
            div.tabs {
                a.on[status.is_none()] href="/console/orders" { (t.all_statuses) }
                @for s in [OrderStatus::Pending, OrderStatus::Paid, OrderStatus::Credited, OrderStatus::Cancelled] {
                    a.on[status == Some(s)] href=(format!("/console/orders?status={}", s.as_str())) { (lang.order_status(s)) }
                }
            }
            div.card.scroll {
                table id="orders" {
                    thead { tr { th { "#" } th { (t.col_created) } th { (t.col_account) } th { (t.col_pack) } th.num { (t.col_credits) } th.num { (t.col_price) } th { (t.col_status) } th {} } }
                    tbody { @for o in &list {
                        tr id=(format!("order-{}", o.id)) {
                            td { (o.id) } td.nowrap { (lang.time(o.created_at)) }
                            td { a href=(format!("/console/accounts/{}", o.account_id)) { "#" (o.account_id) } }
                            td { (o.pack_name) } td.num { (num(lang, o.credits)) } td.num { (lang.price(&o.price)) }
                            td { span.badge.(o.status.as_str()) { (lang.order_status(o.status)) } }
                            td.nowrap {
                                @if matches!(o.status, OrderStatus::Pending | OrderStatus::Paid) {
                                    form.inline method="post" action=(format!("/console/orders/{}/confirm", o.id)) {
                                        input type="hidden" name="csrf" value=(op.csrf);
                                        button type="submit" { (t.confirm) }
                                    }
                                    " "
                                }
                                @if o.status == OrderStatus::Pending {
                                    form.inline method="post" action=(format!("/console/orders/{}/cancel", o.id)) {
                                        input type="hidden" name="csrf" value=(op.csrf);
                                        button.danger type="submit" { (t.cancel) }
                                    }
                                }
                            }
                        }
                    } }
                }
                @if list.is_empty() { p.muted { (t.none) } }
            }
        };
        Ok(c.page(&op, t.nav_orders, body))
    })
    .await
}

/// `POST /console/orders/{id}/confirm` (optional `reference`).
pub async fn confirm_order(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let id = id?;
        let confirmation = Confirmation {
            by: format!("console:{}", op.session.token_name),
            reference: form.get("reference").map(str::to_owned),
        };
        let line = audit(&op, "order.confirm", format!("order:{id}"), String::new());
        c.run(move |s| {
            s.confirm_order_audited(id, &confirmation, &line, |outcome| {
                match (&outcome.credit_error, outcome.credited_now) {
                    (Some(e), _) => format!("not credited: {e}"),
                    (None, true) => "credited".to_owned(),
                    (None, false) => "already credited".to_owned(),
                }
            })
        })
        .await?;
        Ok(see_other("/console/orders"))
    })
    .await
}

/// `POST /console/orders/{id}/cancel`.
pub async fn cancel_order(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let id = id?;
        let line = audit(&op, "order.cancel", format!("order:{id}"), String::new());
        c.run(move |s| s.cancel_order_audited(id, &line)).await?;
        Ok(see_other("/console/orders"))
    })
    .await
}

// ---------------------------------------------------------------- alerts

/// `GET /console/alerts`: the outbox, newest first, with errors.
pub async fn alerts(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let list = c.run(|s| s.list_alerts(AlertFilter::All, 200)).await?;
        let (t, lang) = (c.t(), c.lang());
        let body = html! {
            h1 { (t.nav_alerts) }
            div.card.scroll {
                table id="alerts" {
                    thead { tr { th { "#" } th { (t.col_created) } th { (t.col_account) } th { (t.col_recipient) } th { (t.col_status) } th.num { (t.col_attempts) } th { (t.col_error) } th {} } }
                    tbody { @for a in &list {
                        tr { td { (a.id) } td.nowrap { (lang.time(a.created_at)) }
                            td { a href=(format!("/console/accounts/{}", a.account_id)) { "#" (a.account_id) } }
                            td { (a.recipient) } td { span.badge { (a.state) } } td.num { (a.attempts) }
                            td { (a.last_error.as_deref().unwrap_or("")) }
                            td { @if a.state == "failing" {
                                form.inline method="post" action=(format!("/console/alerts/{}/retry", a.id)) {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    button.secondary type="submit" { (t.retry) }
                                } } } }
                    } }
                }
                @if list.is_empty() { p.muted { (t.none) } }
            }
        };
        Ok(c.page(&op, t.nav_alerts, body))
    })
    .await
}

/// `POST /console/alerts/{id}/retry`: the worker sends it at its next round.
pub async fn retry_alert(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let id = path_id(&req);
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let id = id?;
        let line = audit(&op, "alert.retry", format!("alert:{id}"), String::new());
        if !c.run(move |s| s.retry_alert(id, &line)).await? {
            return Err(ConsoleError::NotFound);
        }
        Ok(see_other("/console/alerts"))
    })
    .await
}

// ---------------------------------------------------------------- Odoo databases

/// `GET /console/databases`.
pub async fn databases(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let list = c.run(|s| s.list_databases()).await?;
        let (t, lang) = (c.t(), c.lang());
        let body = html! {
            h1 { (t.nav_databases) }
            p.sub { (t.release_help) }
            div.card.scroll {
                table id="databases" {
                    thead { tr { th { (t.col_database) } th { (t.col_url) } th { (t.col_state) } th { (t.col_companies) } th.num { (t.nav_accounts) } th { (t.col_refreshed) } th {} } }
                    tbody { @for d in &list {
                        tr { td { code { (d.dbuuid) } br; span.muted { (d.db_name) } }
                            td { (d.url) }
                            td { @if let Some(e) = &d.last_error { span.badge.disabled { (t.refresh_failed) } br; span.muted { (e) } } @else { span.badge.active { (t.registered) } } }
                            td { @for (_, name) in &d.companies { (name) br; } }
                            td.num { (d.accounts) }
                            td.nowrap { (d.refreshed_at.map_or_else(|| t.never_refreshed.to_owned(), |at| lang.time(at))) }
                            td.nowrap {
                                form.inline method="post" action=(format!("/console/databases/{}/refresh", layout_encode(&d.dbuuid))) {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    button.secondary type="submit" { (t.refresh_now) }
                                }
                                " "
                                form.inline method="post" action=(format!("/console/databases/{}/release", layout_encode(&d.dbuuid))) {
                                    input type="hidden" name="csrf" value=(op.csrf);
                                    button.danger type="submit" { (t.release) }
                                }
                            } }
                    } }
                }
                @if list.is_empty() { p.muted { (t.none) } }
            }
        };
        Ok(c.page(&op, t.nav_databases, body))
    })
    .await
}

fn layout_encode(text: &str) -> String {
    crate::pages::layout::encode(text)
}

/// `POST /console/databases/{dbuuid}/refresh`: reads the database again now.
pub async fn refresh_database(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let dbuuid = path_text(&req, "dbuuid");
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let dbuuid = dbuuid?;
        let timeout = std::time::Duration::from_secs(c.cx.state.settings.odoo.timeout_secs);
        let policy =
            crate::odoo::target::TargetPolicy::allowing(&c.cx.state.settings.odoo.allowed_hosts);
        // A failed read is saved (as the database's last error) and audited too.
        let line = audit(
            &op,
            "database.refresh",
            format!("database:{dbuuid}"),
            String::new(),
        );
        let outcome = crate::usecase::databases::refresh_database_audited(
            &c.cx.state.store,
            &dbuuid,
            timeout,
            &policy,
            &crate::usecase::contact::Rules::from_settings(&c.cx.state.settings.limits),
            Some((line, |outcome| match outcome {
                Ok(r) => format!(
                    "refreshed: {} companies, {} accounts over {}",
                    r.companies, r.accounts, r.protocol
                ),
                Err(e) => format!("failed: {e}"),
            })),
        )
        .await?;
        match outcome {
            Ok(_) => Ok(see_other("/console/databases")),
            Err(e) => Err(ConsoleError::Conflict(format!(
                "could not read the database: {e}"
            ))),
        }
    })
    .await
}

/// `POST /console/databases/{dbuuid}/release`: forgets its credentials and copy.
pub async fn release_database(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let dbuuid = path_text(&req, "dbuuid");
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let dbuuid = dbuuid?;
        let line = audit(
            &op,
            "database.release",
            format!("database:{dbuuid}"),
            String::new(),
        );
        if !c
            .run(move |s| s.delete_database_audited(&dbuuid, &line))
            .await?
        {
            return Err(ConsoleError::NotFound);
        }
        Ok(see_other("/console/databases"))
    })
    .await
}

// ---------------------------------------------------------------- admin tokens

async fn tokens_page(
    c: &Ccx,
    op: &Operator,
    shown: Option<(&str, &str)>,
) -> Result<HttpResponse, ConsoleError> {
    let list = c.run(|s| s.list_admin_tokens()).await?;
    let (t, lang) = (c.t(), c.lang());
    let body = html! {
        h1 { (t.nav_tokens) }
        @if let Some((name, secret)) = shown {
            div.notice.ok role="status" {
                p { strong { (t.new_token_for) " " (name) } }
                p.key id="shown-token" { (secret) }
                p { (t.token_shown_once) }
            }
        }
        div.card.scroll {
            table id="tokens" {
                thead { tr { th { (t.col_name) } th { (t.col_created) } th { (t.col_state) } th {} } }
                tbody { @for k in &list {
                    tr { td { (k.name) } td.nowrap { (lang.time(k.created_at)) }
                        td { @if let Some(at) = k.revoked_at { span.badge.disabled { (t.col_revoked) " " (lang.time(at)) } } @else { span.badge.active { (t.active) } } }
                        td { @if k.revoked_at.is_none() {
                            form.inline method="post" action=(format!("/console/tokens/{}/revoke", layout_encode(&k.name))) {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button.danger type="submit" { (t.revoke) }
                            } } } }
                } }
            }
        }
        div.card {
            h2 { (t.new_token) }
            form method="post" action="/console/tokens" {
                input type="hidden" name="csrf" value=(op.csrf);
                div.row {
                    div.field { label for="token-name" { (t.col_name) } input type="text" id="token-name" name="name" maxlength="100" required; }
                    button type="submit" { (t.create) }
                }
            }
        }
    };
    Ok(c.page(op, t.nav_tokens, body))
}

/// `GET /console/tokens`.
pub async fn tokens(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        tokens_page(&c, &op, None).await
    })
    .await
}

/// `POST /console/tokens` (`name`): a new admin token, shown once.
pub async fn create_token(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    respond(req, |c| async move {
        let (op, form) = c.poster(&body).await?;
        let name = form.get("name").unwrap_or("").to_owned();
        let n = name.clone();
        let line = audit(
            &op,
            "token.create",
            format!("token:{}", name.trim()),
            String::new(),
        );
        let secret = c
            .run(move |s| s.create_admin_token_audited(&n, &line))
            .await?;
        tokens_page(&c, &op, Some((&name, &secret))).await
    })
    .await
}

/// `POST /console/tokens/{name}/revoke`: the token and its console sessions end.
pub async fn revoke_token(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let name = path_text(&req, "name");
    respond(req, |c| async move {
        let (op, _) = c.poster(&body).await?;
        let name = name?;
        // Revoking one's own token ends this very session; the line is still written.
        let line = audit(&op, "token.revoke", format!("token:{name}"), String::new());
        if !c
            .run(move |s| s.revoke_admin_token_and_sessions(&name, &line))
            .await?
        {
            return Err(ConsoleError::NotFound);
        }
        Ok(see_other("/console/tokens"))
    })
    .await
}

// ---------------------------------------------------------------- audit

/// `GET /console/audit?before=`.
pub async fn audit_page(req: HttpRequest) -> HttpResponse {
    respond(req, |c| async move {
        let op = c.viewer().await?;
        let before = c.query()?.get("before").and_then(|b| b.parse::<AuditLineId>().ok());
        let lines = c.run(move |s| s.audit_log(100, before)).await?;
        let (t, lang) = (c.t(), c.lang());
        let body = html! {
            h1 { (t.nav_audit) }
            div.card.scroll {
                table id="audit" {
                    thead { tr { th { (t.col_when) } th { (t.col_who) } th { (t.col_action) } th { (t.col_target) } th { (t.col_detail) } } }
                    tbody { @for l in &lines {
                        tr { td.nowrap { (lang.time(l.at)) } td { (l.actor) } td { code { (l.action) } } td { (l.target) } td { (l.detail) } }
                    } }
                }
                @if lines.is_empty() { p.muted { (t.no_lines) } }
                @if lines.len() == 100 {
                    @if let Some(last) = lines.last() {
                        p { a href=(format!("/console/audit?before={}", last.id)) { (t.older) } }
                    }
                }
            }
        };
        Ok(c.page(&op, t.nav_audit, body))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_fingerprints_keep_the_form_stored_with_earlier_keys() {
        let amount = Credits::whole(3).expect("3 credits");
        let account = Ok(AccountId::from_stored(7));
        assert_eq!(
            grant_fingerprint(&account, amount, Some("gift")),
            "Ok(7)|30000|gift"
        );
    }
}
