//! Provider side: `/iap/1/authorize`, `/iap/1/capture`, `/iap/1/cancel`, authenticated by
//! the service key.

use serde_json::{Map, Value};

use super::error::{RpcError, Shortfall};
use super::{Ctx, params};
use crate::ledger::token::AccountToken;
use crate::ledger::{Credits, LedgerError, Service};
use crate::usecase::contact::{self, Caller, Contact, ContactError};

/// Odoo's default hold lifetime (180 days), used when a provider sends no `ttl`.
const DEFAULT_TTL_HOURS: i64 = 4320;

fn service_for_key(ctx: &Ctx, key: &str) -> Result<Service, RpcError> {
    ctx.store
        .service_by_key_cached(key)?
        .ok_or_else(|| RpcError::Access("invalid service key".into()))
}

pub(super) fn account_token(raw: &str) -> Result<AccountToken, RpcError> {
    AccountToken::from_raw(raw)
        .ok_or_else(|| RpcError::Invalid("account_token must be 1-128 characters".into()))
}

fn shortfall(ctx: &Ctx, service: &Service, needed: Credits, trial: bool) -> RpcError {
    RpcError::InsufficientCredit(Shortfall {
        needed,
        service_name: service.technical_name.clone(),
        trial,
        base_url: ctx.credit_url(),
    })
}

/// An authorize request, checked (the full and the fast path read it the same way).
struct AuthorizeRequest {
    key: String,
    token: AccountToken,
    credit: Credits,
    description: Option<String>,
    ttl: i64,
    dbuuid: Option<String>,
}

fn authorize_request(map: Map<String, Value>) -> Result<AuthorizeRequest, RpcError> {
    let p = params(
        map,
        &[
            "account_token",
            "credit",
            "key",
            "description",
            "ttl",
            "dbuuid",
        ],
    )?;
    let key = p.text("key", 256)?.to_owned();
    let token = account_token(p.text("account_token", 128)?)?;
    let credit = p.credits("credit")?;
    // A hold of nothing charges nothing and only opens accounts: refused.
    if credit.is_zero() {
        return Err(RpcError::Invalid(
            "credit must be more than 0 (a hold of 0 credits holds nothing)".into(),
        ));
    }
    let description = p.opt_text("description", 1000)?.map(str::to_owned);
    let ttl = p.opt_int("ttl")?.unwrap_or(DEFAULT_TTL_HOURS);
    if ttl < 1 {
        return Err(RpcError::Invalid(format!(
            "ttl must be at least 1 hour, not {ttl}"
        )));
    }
    Ok(AuthorizeRequest {
        key,
        token,
        credit,
        description,
        ttl,
        dbuuid: p.opt_text("dbuuid", 64)?.map(str::to_owned),
    })
}

/// A capture or cancel request, checked.
struct CloseRequest {
    key: String,
    transaction: String,
    /// `credit_to_capture` (capture only).
    amount: Option<Credits>,
}

fn capture_request(map: Map<String, Value>) -> Result<CloseRequest, RpcError> {
    let p = params(map, &["token", "key", "credit_to_capture"])?;
    Ok(CloseRequest {
        key: p.text("key", 256)?.to_owned(),
        transaction: p.text("token", 256)?.to_owned(),
        amount: p.opt_credits("credit_to_capture")?,
    })
}

fn cancel_request(map: Map<String, Value>) -> Result<CloseRequest, RpcError> {
    let p = params(map, &["token", "key"])?;
    Ok(CloseRequest {
        key: p.text("key", 256)?.to_owned(),
        transaction: p.text("token", 256)?.to_owned(),
        amount: None,
    })
}

/// The provider routes. Each request is read once; when everything it needs before the
/// ledger is in memory it goes straight to the ledger engine ([`fast`]), otherwise it
/// takes the full path on a blocking thread, which gives the same answer and also covers
/// every refusal.
#[derive(Clone, Copy)]
pub(super) enum Call {
    Authorize,
    Capture,
    Cancel,
}

impl Call {
    pub(super) async fn run(self, ctx: Ctx, map: Map<String, Value>) -> Result<Value, RpcError> {
        match self {
            Call::Authorize => {
                let r = authorize_request(map)?;
                if let Some(answer) = fast::authorize(&ctx, &r).await {
                    return answer;
                }
                super::blocking(move || authorize(&ctx, &r)).await
            }
            Call::Capture => {
                let r = capture_request(map)?;
                if let Some(answer) = fast::capture(&ctx, &r).await {
                    return answer;
                }
                super::blocking(move || capture(&ctx, &r)).await
            }
            Call::Cancel => {
                let r = cancel_request(map)?;
                if let Some(answer) = fast::cancel(&ctx, &r).await {
                    return answer;
                }
                super::blocking(move || cancel(&ctx, &r)).await
            }
        }
    }
}

/// Reserves credits; answers the transaction token. The provider's key makes this an
/// authenticated contact: it may open the account and fix its database.
fn authorize(ctx: &Ctx, r: &AuthorizeRequest) -> Result<Value, RpcError> {
    let service = service_for_key(ctx, &r.key)?;
    let c = Contact {
        caller: Caller::Provider,
        service: &service,
        token: &r.token,
        dbuuid: r.dbuuid.as_deref(),
        wants: Some(r.credit),
    };
    let account = match contact::contact(&ctx.store, &ctx.rules, &c) {
        Ok(Some(account)) => account,
        // A provider always gets an account or a refusal; `None` would be a broken rule.
        Ok(None) => return Err(RpcError::Unavailable),
        Err(ContactError::Insufficient { needed, trial }) => {
            return Err(shortfall(ctx, &service, needed, trial));
        }
        Err(e) => return Err(e.into()),
    };
    let description = r.description.as_deref();
    match ctx
        .store
        .authorize(account.id, r.credit, r.ttl, description)
    {
        Ok((_, transaction, _)) => Ok(Value::String(transaction)),
        Err(LedgerError::InsufficientCredit { needed, .. }) => {
            let trial = contact::trial_offered(&ctx.store, &service, Some(&account), None)?;
            Err(shortfall(ctx, &service, needed, trial))
        }
        Err(e) => Err(e.into()),
    }
}

/// Consumes a hold (`credit_to_capture`, or all of it); idempotent.
fn capture(ctx: &Ctx, r: &CloseRequest) -> Result<Value, RpcError> {
    let service = service_for_key(ctx, &r.key)?;
    match ctx
        .store
        .capture(&r.transaction, r.amount, Some(service.id))
    {
        Ok(_) => Ok(Value::Bool(true)),
        Err(LedgerError::InsufficientCredit { needed, .. }) => {
            Err(shortfall(ctx, &service, needed, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Releases a hold; idempotent.
fn cancel(ctx: &Ctx, r: &CloseRequest) -> Result<Value, RpcError> {
    let service = service_for_key(ctx, &r.key)?;
    ctx.store.cancel(&r.transaction, Some(service.id))?;
    Ok(Value::Bool(true))
}

/// What a provider call can be answered with from memory: `None` when something it needs
/// before the ledger (service key, account, database access, trial) is not known there,
/// or when the ledger's refusal needs the database to be told.
mod fast {
    use serde_json::Value;

    use super::{AuthorizeRequest, CloseRequest, RpcError};
    use crate::ledger::LedgerError;
    use crate::protocol::Ctx;
    use crate::usecase::contact;

    type Answer = Option<Result<Value, RpcError>>;

    /// The ledger refused: insufficient credit needs the full path (its error names the
    /// trial offer, read from the database), which runs the call again; a refused call
    /// changed nothing.
    fn ledger_refusal(e: LedgerError) -> Answer {
        match e {
            LedgerError::InsufficientCredit { .. } => None,
            e => Some(Err(e.into())),
        }
    }

    pub async fn authorize(ctx: &Ctx, r: &AuthorizeRequest) -> Answer {
        let store = &ctx.store;
        let service = store.remembered_service(&r.key)?;
        let account = contact::remembered(store, &service, &r.token, r.dbuuid.as_deref())?;
        let description = r.description.as_deref();
        match store
            .authorize_async(account.id, r.credit, r.ttl, description)
            .await
        {
            Ok((_, transaction, _)) => Some(Ok(Value::String(transaction))),
            Err(e) => ledger_refusal(e),
        }
    }

    pub async fn capture(ctx: &Ctx, r: &CloseRequest) -> Answer {
        let service = ctx.store.remembered_service(&r.key)?;
        match ctx
            .store
            .capture_async(&r.transaction, r.amount, Some(service.id))
            .await
        {
            Ok(_) => Some(Ok(Value::Bool(true))),
            Err(e) => ledger_refusal(e),
        }
    }

    pub async fn cancel(ctx: &Ctx, r: &CloseRequest) -> Answer {
        let service = ctx.store.remembered_service(&r.key)?;
        match ctx
            .store
            .cancel_async(&r.transaction, Some(service.id))
            .await
        {
            Ok(_) => Some(Ok(Value::Bool(true))),
            Err(e) => ledger_refusal(e),
        }
    }
}
