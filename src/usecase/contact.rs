//! Contact: a caller names an account (service + token) and maybe a database. Find the
//! account, check the service is open to its database, open it when this caller may, give
//! the trial when it is due. Every face goes through here: Odoo's client routes, the
//! provider's authorize (its fast path too, through [`remembered`]) and the portal's entry
//! links. The operator's grants (CLI, admin API) open and bind accounts through
//! `Store::ensure_account` directly: the operator is trusted with every rule.
//!
//! The rules (README, "Accounts and databases"):
//! - An account belongs to one database, fixed by its first *authenticated* contact that
//!   names one: a provider's authorize (service key), the registered database read by the
//!   bridge, an operator's grant, or a paid portal purchase (the order keeps the portal
//!   session's database, [`purchase_database`]; crediting it binds). A `dbuuid` anywhere
//!   else is a claim anyone can make: dbuuids are not secret.
//! - A call naming another database than the account's is a copy of that database or a
//!   lie: it is answered (the token is the secret that owns the credits), but it never
//!   re-binds the account, never passes a service restriction (restrictions are checked
//!   against the account's database once it has one) and never gets a trial.
//! - Trials go once per account and once per (service, database), only to an account for
//!   its own database.
//! - Odoo's client routes only read: an unknown token is answered as unregistered and
//!   nothing is written. The portal's "Buy credits" link may open an account without a
//!   database, so that credits can be bought before the service is first used.
//! - A provider may open at most `limits.accounts_per_database` accounts per database.

use crate::ledger::token::AccountToken;
use crate::ledger::{Account, Credits, LedgerError, Service};
use crate::store::Store;

/// Who makes the contact, which decides what it may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Odoo's client routes: the token only. Never opens an account, never binds one.
    Reader,
    /// The portal's "Buy credits" link with the raw token: may open an account without a
    /// database (credits can be bought for it), never binds one.
    BuyLink,
    /// A portal link carrying only `sha1(token)`: it cannot carry `+disabled` either, so
    /// it writes nothing at all.
    HashedLink,
    /// A provider authenticated by its service key: opens and binds, within the bound on
    /// accounts per database.
    Provider,
    /// A registered Odoo database, read by the bridge with its API key: the dbuuid comes
    /// from the database itself, so it opens and binds the accounts Odoo holds, within
    /// the same bound.
    RegisteredDatabase,
}

/// The settings the rules read.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub accounts_per_database: u32,
}

impl Rules {
    pub fn from_settings(limits: &crate::config::LimitSettings) -> Rules {
        Rules {
            accounts_per_database: limits.accounts_per_database,
        }
    }
}

/// One contact.
#[derive(Clone, Copy, Debug)]
pub struct Contact<'a> {
    pub caller: Caller,
    pub service: &'a Service,
    pub token: &'a AccountToken,
    /// The `dbuuid` the request names, if any.
    pub dbuuid: Option<&'a str>,
    /// A provider's authorize: the credits it wants to hold. An account that does not
    /// exist yet is opened only when it could hold them (with its trial, if due).
    pub wants: Option<Credits>,
}

/// Why a contact was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("the {service} service is not available to database {}", dbuuid.as_deref().unwrap_or("(unknown)"))]
    NotAvailable {
        service: String,
        dbuuid: Option<String>,
    },
    #[error("database {dbuuid} already has {max} accounts, the most it may open")]
    TooManyAccounts { dbuuid: String, max: u32 },
    /// A provider asked more of a new account than it would have; `trial`: its database
    /// can still receive the trial.
    #[error("insufficient credit ({needed} needed)")]
    Insufficient { needed: Credits, trial: bool },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The database whose rights a call has: the account's own, or, for an account that has
/// none yet (or none at all), the one the call names.
pub fn effective_database<'a>(
    account: Option<&'a Account>,
    dbuuid: Option<&'a str>,
) -> Option<&'a str> {
    account.and_then(|a| a.dbuuid.as_deref()).or(dbuuid)
}

/// Whether `service` is open to the account (or, for an unknown one, to `dbuuid`).
pub fn allowed(
    store: &Store,
    service: &Service,
    account: Option<&Account>,
    dbuuid: Option<&str>,
) -> Result<bool, LedgerError> {
    store.service_allows(service, effective_database(account, dbuuid))
}

fn check_allowed(
    store: &Store,
    service: &Service,
    account: Option<&Account>,
    dbuuid: Option<&str>,
) -> Result<(), ContactError> {
    if allowed(store, service, account, dbuuid)? {
        Ok(())
    } else {
        Err(ContactError::NotAvailable {
            service: service.technical_name.clone(),
            dbuuid: effective_database(account, dbuuid).map(str::to_owned),
        })
    }
}

/// Whether a trial could still go to `account` (for its own database), or, for an account
/// not opened yet, to a new account of `dbuuid`. What "Insufficient credit" answers and
/// the portal offer.
pub fn trial_offered(
    store: &Store,
    service: &Service,
    account: Option<&Account>,
    dbuuid: Option<&str>,
) -> Result<bool, LedgerError> {
    if service.trial_credits.is_zero() {
        return Ok(false);
    }
    let db = match account {
        Some(a) => match a.dbuuid.as_deref() {
            Some(db) if !store.account_had_trial(a.id)? => db,
            _ => return Ok(false),
        },
        None => match dbuuid {
            Some(db) if !db.is_empty() => db,
            _ => return Ok(false),
        },
    };
    Ok(!store.database_had_trial(service, db)?)
}

/// The account of `c.token` for `c.service` after this contact, `None` when it does not
/// exist and this caller may not open it.
pub fn contact(store: &Store, rules: &Rules, c: &Contact) -> Result<Option<Account>, ContactError> {
    let known = match c.caller {
        // Provider calls reuse a recent lookup (`database.lookup_cache_ms`).
        Caller::Provider => store.find_account_cached(c.service.id, c.token)?,
        _ => store.find_account(c.service.id, c.token)?,
    };
    check_allowed(store, c.service, known.as_ref(), c.dbuuid)?;
    // The database this contact fixes: only an authenticated one, only for an account
    // that has none yet.
    let bind = c
        .dbuuid
        .filter(|db| {
            matches!(c.caller, Caller::Provider | Caller::RegisteredDatabase) && !db.is_empty()
        })
        .filter(|_| known.as_ref().is_none_or(|a| a.dbuuid.is_none()));
    let account = match (c.caller, known) {
        (Caller::HashedLink, known) => return Ok(known),
        (Caller::Reader, None) => return Ok(None),
        (Caller::Reader | Caller::BuyLink, known) => {
            store.ensure_known_account(known, c.service.id, c.token, None)?
        }
        (Caller::Provider | Caller::RegisteredDatabase, known) => {
            if let Some(db) = bind {
                check_room(store, rules, db)?;
                if known.is_none()
                    && let Some(wants) = c.wants
                {
                    check_new_account_covers(store, c.service, db, wants)?;
                }
            } else if known.is_none()
                && let Some(wants) = c.wants
            {
                // No database, no trial: a new account would have nothing to hold.
                if !wants.is_zero() {
                    return Err(ContactError::Insufficient {
                        needed: wants,
                        trial: false,
                    });
                }
            }
            store.ensure_known_account(known, c.service.id, c.token, bind)?
        }
    };
    grant_trial_if_due(store, c.service, &account, c.dbuuid)?;
    Ok(Some(account))
}

/// Refuses to bind one more account to `dbuuid` past the bound.
fn check_room(store: &Store, rules: &Rules, dbuuid: &str) -> Result<(), ContactError> {
    let max = rules.accounts_per_database;
    if store.count_database_accounts(dbuuid)? >= i64::from(max) {
        return Err(ContactError::TooManyAccounts {
            dbuuid: dbuuid.to_owned(),
            max,
        });
    }
    Ok(())
}

/// A new account of `dbuuid` would hold its trial (if due) and nothing else: refuse before
/// opening it when that is less than `wants`, so a refused authorize registers nothing.
fn check_new_account_covers(
    store: &Store,
    service: &Service,
    dbuuid: &str,
    wants: Credits,
) -> Result<(), ContactError> {
    let trial = trial_offered(store, service, None, Some(dbuuid))?;
    let would_have = if trial {
        service.trial_credits
    } else {
        Credits::ZERO
    };
    if wants > would_have {
        return Err(ContactError::Insufficient {
            needed: wants,
            trial,
        });
    }
    Ok(())
}

/// Gives the trial when the call names the account's own database and neither had one.
fn grant_trial_if_due(
    store: &Store,
    service: &Service,
    account: &Account,
    dbuuid: Option<&str>,
) -> Result<(), LedgerError> {
    if let (Some(own), Some(named)) = (account.dbuuid.as_deref(), dbuuid)
        && own == named
    {
        store.grant_trial_once(service, account.id, own)?;
    }
    Ok(())
}

/// A trial asked for from the portal: for the account's own database, once.
pub fn claim_trial(
    store: &Store,
    service: &Service,
    account: &Account,
) -> Result<bool, LedgerError> {
    let Some(db) = account.dbuuid.as_deref() else {
        return Ok(false);
    };
    Ok(store.grant_trial_once(service, account.id, db)?.is_some())
}

/// The database a portal order placed from a session of `session_dbuuid` may carry, so
/// that crediting it binds `account` there (see [`crate::payments::Order::dbuuid`]).
/// A paid purchase is an authenticated first contact: whoever pays for an account holds
/// its token and came from that database's "Buy credits" link. It binds only an account
/// without a database, only to a database the service is open to, and within the bound
/// on accounts per database (checked again by nothing at crediting time: an order placed
/// while there was room binds once paid). `None`: the order binds nothing.
pub fn purchase_database(
    store: &Store,
    rules: &Rules,
    service: &Service,
    account: &Account,
    session_dbuuid: Option<&str>,
) -> Result<Option<String>, ContactError> {
    let Some(db) = session_dbuuid.filter(|db| !db.is_empty()) else {
        return Ok(None);
    };
    if account.dbuuid.is_some() {
        return Ok(None);
    }
    match check_allowed(store, service, Some(account), Some(db))
        .and_then(|()| check_room(store, rules, db))
    {
        Ok(()) => Ok(Some(db.to_owned())),
        Err(e @ (ContactError::NotAvailable { .. } | ContactError::TooManyAccounts { .. })) => {
            tracing::info!(account = %account.id, dbuuid = %db, reason = %e,
                "portal order will not bind its account's database");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`contact`] for a provider's authorize from memory only: the account as the full path
/// would find it, when nothing about this call needs the database (account known and
/// current, service open to its database, no trial that could be due). `None`: take the
/// full path.
pub fn remembered(
    store: &Store,
    service: &Service,
    token: &AccountToken,
    dbuuid: Option<&str>,
) -> Option<Account> {
    // Not current when this call would bind the account or change what it stores.
    let account = store.remembered_account(service.id, token, dbuuid)?;
    if store.remembered_allows(service, effective_database(Some(&account), dbuuid)) != Some(true) {
        return None;
    }
    if let (Some(own), Some(named)) = (account.dbuuid.as_deref(), dbuuid)
        && own == named
        && !store.trial_settled(service, account.id, own)
    {
        return None;
    }
    Some(account)
}

/// Opens (and binds to `dbuuid`) the accounts a registered database holds, as read by the
/// bridge; accounts of services the sidecar does not sell, or not open to that database,
/// or past the bound on accounts per database, are left out (logged). Answers how many
/// accounts the database now has here.
pub fn open_registered_accounts(
    store: &Store,
    rules: &Rules,
    snapshot: &crate::odoo::sync::Snapshot,
) -> Result<usize, ContactError> {
    let mut opened = 0;
    for account in &snapshot.accounts {
        let service = match store.service_by_name(&account.service_name) {
            Ok(service) => service,
            Err(LedgerError::UnknownService(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let contact = Contact {
            caller: Caller::RegisteredDatabase,
            service: &service,
            token: &account.token,
            dbuuid: Some(&snapshot.dbuuid),
            wants: None,
        };
        match self::contact(store, rules, &contact) {
            Ok(_) => opened += 1,
            Err(e @ (ContactError::NotAvailable { .. } | ContactError::TooManyAccounts { .. })) => {
                tracing::info!(dbuuid = %snapshot.dbuuid, service = %service.technical_name, reason = %e,
                    "account of a registered database left out");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(opened)
}
