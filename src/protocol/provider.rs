//! Provider side: `/iap/1/authorize`, `/iap/1/capture`, `/iap/1/cancel`, authenticated by
//! the service key.

use serde_json::{Map, Value};

use super::error::{RpcError, Shortfall};
use super::{Ctx, params};
use crate::ledger::token::AccountToken;
use crate::usecase::charge::{self, Authorization, ChargeError, Settlement};

/// Odoo's default hold lifetime (180 days), used when a provider sends no `ttl`.
const DEFAULT_TTL_HOURS: i64 = 4320;

pub(super) fn account_token(raw: &str) -> Result<AccountToken, RpcError> {
    AccountToken::from_raw(raw)
        .ok_or_else(|| RpcError::Invalid("account_token must be 1-128 characters".into()))
}

/// An authorize request, checked (the full and the fast path read it the same way).
fn authorize_request(map: Map<String, Value>) -> Result<Authorization, RpcError> {
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
    Ok(Authorization {
        key,
        token,
        credit,
        description,
        ttl_hours: ttl,
        dbuuid: p.opt_text("dbuuid", 64)?.map(str::to_owned),
    })
}

fn capture_request(map: Map<String, Value>) -> Result<Settlement, RpcError> {
    let p = params(map, &["token", "key", "credit_to_capture"])?;
    Ok(Settlement {
        key: p.text("key", 256)?.to_owned(),
        transaction: p.text("token", 256)?.to_owned(),
        amount: p.opt_credits("credit_to_capture")?,
    })
}

fn cancel_request(map: Map<String, Value>) -> Result<Settlement, RpcError> {
    let p = params(map, &["token", "key"])?;
    Ok(Settlement {
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
        let outcome = match self {
            Call::Authorize => {
                let r = authorize_request(map)?;
                charge::authorize(&ctx.store, &ctx.rules, r)
                    .await
                    .map(Value::String)
            }
            Call::Capture => charge::capture(&ctx.store, capture_request(map)?)
                .await
                .map(|()| Value::Bool(true)),
            Call::Cancel => charge::cancel(&ctx.store, cancel_request(map)?)
                .await
                .map(|()| Value::Bool(true)),
        };
        outcome.map_err(|e| refusal(&ctx, e))
    }
}

/// A refused charge in the protocol's words.
fn refusal(ctx: &Ctx, e: ChargeError) -> RpcError {
    match e {
        ChargeError::UnknownKey => RpcError::Access("invalid service key".into()),
        ChargeError::Insufficient {
            service,
            needed,
            trial,
        } => RpcError::InsufficientCredit(Shortfall {
            needed,
            service_name: service,
            trial,
            base_url: ctx.credit_url(),
        }),
        ChargeError::Contact(e) => e.into(),
        ChargeError::Ledger(e) => e.into(),
        ChargeError::Lost(e) => {
            tracing::error!(error = %e, "provider call failed");
            RpcError::Unavailable
        }
    }
}
