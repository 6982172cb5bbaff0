//! Client side: what Odoo databases read and write about their accounts.

use serde_json::{Map, Value, json};

use super::error::RpcError;
use super::params::string_fields;
use super::provider::account_token;
use super::{Ctx, params};
use crate::ledger::token::AccountToken;
use crate::ledger::{Account, Credits, Recipient, Service};
use crate::store::AlertUpdate;
use crate::usecase::contact::{self, Caller, Contact};

/// At most this many accounts in one batched call.
const MAX_BATCH: usize = 1000;
/// At most this many alert recipients per account.
const MAX_RECIPIENTS: usize = 50;

/// What Odoo's client routes may do with a token: read (see `usecase::contact`).
fn read_contact(
    ctx: &Ctx,
    service: &Service,
    token: &AccountToken,
    dbuuid: Option<&str>,
) -> Result<Option<Account>, RpcError> {
    let c = Contact {
        caller: Caller::Reader,
        service,
        token,
        dbuuid,
        wants: None,
    };
    Ok(contact::contact(&ctx.store, &ctx.rules, &c)?)
}

fn number(c: Credits) -> Value {
    json!(c.to_f64())
}

/// `/iap/1/balance`: the available credits, 0 for an unknown service or account. Never
/// answers insufficient credit (Odoo would fail the caller instead of showing 0).
pub fn balance(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["dbuuid", "account_token", "service_name"])?;
    let raw = p.text("account_token", 128)?;
    let token = account_token(raw)?;
    let name = p.text("service_name", 64)?;
    let dbuuid = p.opt_text("dbuuid", 64)?;
    let service = match ctx.store.service_by_name(name) {
        Ok(service) => service,
        Err(crate::ledger::LedgerError::UnknownService(_)) => return Ok(number(Credits::ZERO)),
        Err(e) => return Err(e.into()),
    };
    match read_contact(ctx, &service, &token, dbuuid)? {
        Some(account) => Ok(number(ctx.store.balance(account.id)?.available)),
        None => Ok(number(Credits::ZERO)),
    }
}

/// `/iap/1/get-accounts-information` (18, 19): balances and thresholds keyed by token;
/// unknown tokens as unregistered. Accounts of services not open to their database are
/// left out.
pub fn accounts_information(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["iap_accounts", "dbuuid"])?;
    let dbuuid = p.opt_text("dbuuid", 64)?;
    // Every item is checked before any account is registered: a refused batch changes nothing.
    let items = p
        .list("iap_accounts", MAX_BATCH)?
        .iter()
        .map(|item| {
            let [raw, name] = string_fields("iap_accounts", item, ["token", "service"])?;
            Ok((raw, account_token(raw)?, name))
        })
        .collect::<Result<Vec<_>, RpcError>>()?;
    let unregistered = json!({"balance": 0, "warning_threshold": 0, "registered": "unregistered"});
    let mut out = Map::new();
    for (raw, token, name) in items {
        let service = match ctx.store.service_by_name(name) {
            Ok(service) => service,
            Err(crate::ledger::LedgerError::UnknownService(_)) => {
                out.insert(raw.to_owned(), unregistered.clone());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let account = match read_contact(ctx, &service, &token, dbuuid) {
            Ok(Some(account)) => account,
            Ok(None) => {
                out.insert(raw.to_owned(), unregistered.clone());
                continue;
            }
            Err(RpcError::Access(reason)) => {
                tracing::info!(service = name, %reason, "account left out");
                continue;
            }
            Err(e) => return Err(e),
        };
        let figures = ctx.store.balance(account.id)?;
        let mut info = json!({
            "balance": number(figures.available),
            "warning_threshold": number(account.alerts.threshold),
            "registered": account.state.as_str(),
        });
        // Odoo 18/19 read an SMS account's registration and sender name from here.
        if name == ctx.sms.rules.service {
            let (state, sender) =
                crate::usecase::sms::registration_state(&ctx.store, &ctx.sms.rules, &account)?;
            info["registered"] = json!(state);
            if let Some(sender) = sender {
                info["sender_name"] = json!(sender);
            }
        }
        out.insert(raw.to_owned(), info);
    }
    Ok(Value::Object(out))
}

fn recipient(email: &str, lang_code: Option<&str>) -> Result<Recipient, RpcError> {
    let email = email.trim();
    if !Recipient::plausible_email(email) {
        return Err(RpcError::Invalid(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    if let Some(lang) = lang_code {
        let ok = lang.len() <= 16
            && lang
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@');
        if !ok {
            return Err(RpcError::Invalid(format!(
                "{lang:?} is not a language code"
            )));
        }
    }
    Ok(Recipient {
        email: email.to_owned(),
        lang_code: lang_code.map(str::to_owned),
    })
}

/// Applies `update` to every account of `raw` token (one per service it is used for).
fn update_alerts(ctx: &Ctx, raw: &str, update: &AlertUpdate) -> Result<Value, RpcError> {
    let token = account_token(raw)?;
    let accounts = ctx.store.accounts_by_token(&token)?;
    if accounts.is_empty() {
        return Err(RpcError::Access(
            "unknown account token: open the account in Odoo once so it registers".into(),
        ));
    }
    for (account, _) in accounts {
        ctx.store.set_alerts(account.id, update)?;
    }
    Ok(Value::Bool(true))
}

/// `/iap/1/update-warning-email-alerts` (18, 19): threshold and recipients.
pub fn update_warning_email_alerts(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(
        map,
        &["account_token", "warning_threshold", "warning_emails"],
    )?;
    let raw = p.text("account_token", 128)?;
    let threshold = p.opt_credits("warning_threshold")?;
    let recipients = match p.opt_list("warning_emails", MAX_RECIPIENTS)? {
        None => None,
        Some(items) => Some(
            items
                .iter()
                .map(|item| {
                    let Value::Object(fields) = item else {
                        return Err(RpcError::Invalid(
                            "items of \"warning_emails\" must be {email, lang_code} objects".into(),
                        ));
                    };
                    if let Some(extra) = fields.keys().find(|k| *k != "email" && *k != "lang_code")
                    {
                        return Err(RpcError::Invalid(format!(
                            "unknown key {extra:?} in an item of \"warning_emails\""
                        )));
                    }
                    let email = fields.get("email").and_then(Value::as_str).ok_or_else(|| {
                        RpcError::Invalid("each item of \"warning_emails\" needs \"email\"".into())
                    })?;
                    let lang = match fields.get("lang_code") {
                        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
                        Some(Value::String(s)) => Some(s.as_str()),
                        Some(_) => {
                            return Err(RpcError::Invalid("\"lang_code\" must be a string".into()));
                        }
                    };
                    recipient(email, lang)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    update_alerts(
        ctx,
        raw,
        &AlertUpdate {
            threshold,
            warn_me: None,
            recipients,
        },
    )
}

/// `/iap/services-token` (17): one `iap.account.info` record per known account, with
/// exactly that model's fields (Odoo 17 fails on any other key).
pub fn services_token(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(map, &["dbuuid", "iap_accounts"])?;
    let dbuuid = p.opt_text("dbuuid", 64)?;
    let items = p.list("iap_accounts", MAX_BATCH)?;
    let mut out = Vec::new();
    for item in items {
        let Value::String(raw) = item else {
            return Err(RpcError::Invalid(
                "items of \"iap_accounts\" must be account tokens (strings)".into(),
            ));
        };
        let token = account_token(raw)?;
        for (account, service) in ctx.store.accounts_by_token(&token)? {
            if !contact::allowed(&ctx.store, &service, Some(&account), dbuuid)? {
                continue;
            }
            let figures = ctx.store.balance(account.id)?;
            let emails: Vec<&str> = account
                .alerts
                .recipients
                .iter()
                .map(|r| r.email.as_str())
                .collect();
            out.push(json!({
                "account_token": raw,
                "balance": number(figures.available),
                "account_uuid_hashed": token.sha1_hex(),
                "service_name": service.technical_name,
                "description": service.label,
                "warn_me": account.alerts.warn_me,
                "warning_threshold": number(account.alerts.threshold),
                "warning_email": if emails.is_empty() { Value::Bool(false) } else { json!(emails.join(",")) },
                "unit_name": service.unit_name,
            }));
        }
    }
    Ok(Value::Array(out))
}

/// `/iap/update-warning-odoo` (17): only the non-null settings change.
pub fn update_warning_odoo(ctx: &Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
    let p = params(
        map,
        &[
            "account_token",
            "dbuuid",
            "warn_me",
            "warning_threshold",
            "warning_email",
        ],
    )?;
    let raw = p.text("account_token", 128)?;
    p.opt_text("dbuuid", 64)?;
    let recipients = match p.opt_text("warning_email", 2000)? {
        None if p.is_false("warning_email") => Some(Vec::new()),
        None => None,
        Some(list) => Some(
            list.split(',')
                .filter(|e| !e.trim().is_empty())
                .take(MAX_RECIPIENTS + 1)
                .map(|e| recipient(e, None))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if recipients
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RECIPIENTS)
    {
        return Err(RpcError::Invalid(format!(
            "at most {MAX_RECIPIENTS} alert recipients"
        )));
    }
    update_alerts(
        ctx,
        raw,
        &AlertUpdate {
            threshold: p.opt_credits("warning_threshold")?,
            warn_me: p.opt_bool("warn_me")?,
            recipients,
        },
    )
}
