//! Charging for a provider's service: authorize (hold credits), capture, cancel. Odoo's
//! `/iap/1/authorize`, `/iap/1/capture` and `/iap/1/cancel` call these, one each.
//!
//! Each call is answered from memory when everything it needs before the ledger is
//! remembered there (the service key, the account and its access: the engine's fast
//! path, no blocking thread), else in full on a blocking thread: the service by its key,
//! first contact ([`contact::contact`], which opens the account and grants its trial),
//! then the ledger. A refusal for want of credit always takes the full path, because its
//! answer names the trial offer, read from the database; a refused call changed nothing,
//! so running it again is safe.

use super::contact::{self, Caller, Contact, ContactError, Rules};
use crate::ledger::token::AccountToken;
use crate::ledger::{Credits, LedgerError, Service};
use crate::store::Store;

/// A provider's hold request.
#[derive(Clone)]
pub struct Authorization {
    /// The provider's service key.
    pub key: String,
    pub token: AccountToken,
    pub credit: Credits,
    pub description: Option<String>,
    /// How long the hold lives, in hours.
    pub ttl_hours: i64,
    /// The database the provider says it calls for: a claim, see `contact`.
    pub dbuuid: Option<String>,
}

/// A capture (with an amount, or the whole hold) or a cancel of a held transaction.
#[derive(Clone)]
pub struct Settlement {
    pub key: String,
    /// The transaction token `authorize` answered.
    pub transaction: String,
    /// Capture only: the amount, at most the hold; `None` captures the whole hold.
    pub amount: Option<Credits>,
}

/// Why a charge was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error("invalid service key")]
    UnknownKey,
    /// Not enough credits; `trial` says whether a free trial is on offer for it.
    #[error("insufficient credit: {needed} needed on {service}")]
    Insufficient {
        service: String,
        needed: Credits,
        trial: bool,
    },
    #[error(transparent)]
    Contact(ContactError),
    #[error(transparent)]
    Ledger(LedgerError),
    /// The blocking thread of the full path was lost (a panic, or the runtime stopping).
    #[error("the charge could not be run: {0}")]
    Lost(String),
}

impl From<LedgerError> for ChargeError {
    fn from(e: LedgerError) -> Self {
        ChargeError::Ledger(e)
    }
}

/// Holds `a.credit` on the account of `a.token` for the service of `a.key`; answers the
/// transaction token.
pub async fn authorize(
    store: &Store,
    rules: &Rules,
    a: Authorization,
) -> Result<String, ChargeError> {
    if let Some(answer) = authorize_remembered(store, &a).await {
        return answer;
    }
    let (store, rules) = (store.clone(), *rules);
    blocking(move || authorize_in_full(&store, &rules, &a)).await
}

/// Captures a held transaction, in whole or in part.
pub async fn capture(store: &Store, s: Settlement) -> Result<(), ChargeError> {
    if let Some(service) = store.remembered_service(&s.key) {
        match store
            .capture_async(&s.transaction, s.amount, Some(service.id))
            .await
        {
            Ok(_) => return Ok(()),
            Err(LedgerError::InsufficientCredit { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let store = store.clone();
    blocking(move || {
        let service = service_for_key(&store, &s.key)?;
        match store.capture(&s.transaction, s.amount, Some(service.id)) {
            Ok(_) => Ok(()),
            Err(LedgerError::InsufficientCredit { needed, .. }) => Err(ChargeError::Insufficient {
                service: service.technical_name,
                needed,
                trial: false,
            }),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Cancels a held transaction: its credits are available again.
pub async fn cancel(store: &Store, s: Settlement) -> Result<(), ChargeError> {
    if let Some(service) = store.remembered_service(&s.key) {
        match store.cancel_async(&s.transaction, Some(service.id)).await {
            Ok(_) => return Ok(()),
            Err(LedgerError::InsufficientCredit { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let store = store.clone();
    blocking(move || {
        let service = service_for_key(&store, &s.key)?;
        store.cancel(&s.transaction, Some(service.id))?;
        Ok(())
    })
    .await
}

/// The fast path: `None` when something it needs is not in memory, or when the ledger
/// refused for want of credit (the full path answers that, with the trial offer).
async fn authorize_remembered(
    store: &Store,
    a: &Authorization,
) -> Option<Result<String, ChargeError>> {
    let service = store.remembered_service(&a.key)?;
    let account = contact::remembered(store, &service, &a.token, a.dbuuid.as_deref())?;
    match store
        .authorize_async(account.id, a.credit, a.ttl_hours, a.description.as_deref())
        .await
    {
        Ok((_, transaction, _)) => Some(Ok(transaction)),
        Err(LedgerError::InsufficientCredit { .. }) => None,
        Err(e) => Some(Err(e.into())),
    }
}

fn authorize_in_full(
    store: &Store,
    rules: &Rules,
    a: &Authorization,
) -> Result<String, ChargeError> {
    let service = service_for_key(store, &a.key)?;
    let c = Contact {
        caller: Caller::Provider,
        service: &service,
        token: &a.token,
        dbuuid: a.dbuuid.as_deref(),
        wants: Some(a.credit),
    };
    let account = match contact::contact(store, rules, &c) {
        Ok(Some(account)) => account,
        // A provider always gets an account or a refusal; `None` would be a broken rule.
        Ok(None) => {
            return Err(ChargeError::Lost(
                "first contact opened no account for a provider".into(),
            ));
        }
        Err(ContactError::Insufficient { needed, trial }) => {
            return Err(ChargeError::Insufficient {
                service: service.technical_name,
                needed,
                trial,
            });
        }
        Err(e) => return Err(ChargeError::Contact(e)),
    };
    match store.authorize(account.id, a.credit, a.ttl_hours, a.description.as_deref()) {
        Ok((_, transaction, _)) => Ok(transaction),
        Err(LedgerError::InsufficientCredit { needed, .. }) => {
            let trial = contact::trial_offered(store, &service, Some(&account), None)?;
            Err(ChargeError::Insufficient {
                service: service.technical_name,
                needed,
                trial,
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn service_for_key(store: &Store, key: &str) -> Result<Service, ChargeError> {
    store
        .service_by_key_cached(key)?
        .ok_or(ChargeError::UnknownKey)
}

/// Runs the full path off the async workers (it waits on the database).
async fn blocking<T, F>(f: F) -> Result<T, ChargeError>
where
    F: FnOnce() -> Result<T, ChargeError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ChargeError::Lost(e.to_string())))
}
