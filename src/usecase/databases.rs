//! Odoo databases: registering one (after its `database.uuid` was checked over its own
//! API) and reading it again. The refresh worker and the operator (admin API, console)
//! refresh through the same function.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::contact::{self, ContactError, Rules};
use crate::error::AppError;
use crate::ledger::LedgerError;
use crate::ledger::token::{constant_time_eq, sha256_hex};
use crate::odoo::sync::{Snapshot, read_database};
use crate::odoo::{OdooClient, TargetPolicy};
use crate::store::{AuditRecord, OdooCredentials, Store};

/// Whether `dbuuid` may be registered by a caller presenting `database_token`: a new
/// database may; a registered one only with its current token (dbuuids travel in every
/// IAP call, so they prove nothing). Asked before Odoo is called, so a registered
/// database is not re-read for a stranger; the write checks again under its lock.
pub fn may_register(
    store: &Store,
    dbuuid: &str,
    database_token: Option<&str>,
) -> Result<(), AppError> {
    match store.database_token_hash(dbuuid)? {
        Some(stored)
            if !database_token
                .is_some_and(|token| constant_time_eq(&stored, &sha256_hex(token))) =>
        {
            Err(crate::store::already_registered(dbuuid))
        }
        _ => Ok(()),
    }
}

/// Records a database whose `database.uuid` was checked over its own API (the caller
/// read `snapshot` with `credentials`): stores it and opens its IAP accounts, bound to it.
/// Answers the database token; a database registered already needs `presented`, its
/// current token.
pub fn register(
    store: &Store,
    rules: &Rules,
    credentials: &OdooCredentials,
    snapshot: &Snapshot,
    presented: Option<&str>,
) -> Result<String, AppError> {
    let token = store.register_database(credentials, snapshot, presented)?;
    open_accounts(store, rules, snapshot)?;
    Ok(token)
}

/// The registered database's accounts, read with its API key, are an authenticated first
/// contact: they are opened here and bound to that database (`usecase::contact`).
pub fn open_accounts(store: &Store, rules: &Rules, snapshot: &Snapshot) -> Result<(), LedgerError> {
    match contact::open_registered_accounts(store, rules, snapshot) {
        Ok(_) => Ok(()),
        Err(ContactError::Ledger(e)) => Err(e),
        Err(e) => Err(LedgerError::Invalid(e.to_string())),
    }
}

/// What a refresh read: the addon shows these counts in its status line.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed {
    pub dbuuid: String,
    pub refreshed: bool,
    /// Companies read from the database.
    pub companies: usize,
    /// IAP accounts read from the database.
    pub accounts: usize,
    /// How the database was read: `json2` (Odoo 19 and later) or `jsonrpc`.
    pub protocol: String,
}

/// Reads a registered database again, under the same target rule as the registration
/// (`policy`); records the error and keeps the old copy when Odoo cannot be read.
pub async fn refresh_database(
    store: &Store,
    dbuuid: &str,
    timeout: Duration,
    policy: &TargetPolicy,
    rules: &Rules,
) -> Result<Result<Refreshed, String>, AppError> {
    refresh_database_audited(store, dbuuid, timeout, policy, rules, None).await
}

/// An operator's audit line for a refresh, its detail made from the outcome.
pub type RefreshAudit = (AuditRecord, fn(&Result<Refreshed, String>) -> String);

/// [`refresh_database`]; with `audit`, the line (its detail made from the outcome) is
/// written in the transaction that saves the outcome.
pub async fn refresh_database_audited(
    store: &Store,
    dbuuid: &str,
    timeout: Duration,
    policy: &TargetPolicy,
    rules: &Rules,
    audit: Option<RefreshAudit>,
) -> Result<Result<Refreshed, String>, AppError> {
    let Some(credentials) = ({
        let (store, dbuuid) = (store.clone(), dbuuid.to_owned());
        tokio::task::spawn_blocking(move || store.database_credentials(&dbuuid))
            .await
            .map_err(|e| AppError::from(crate::ledger::StorageError::failed(e)))??
    }) else {
        return Err(AppError::Invalid(format!(
            "database {dbuuid} is not registered"
        )));
    };
    let outcome = match OdooClient::with_policy(
        &credentials.url,
        &credentials.db_name,
        &credentials.login,
        credentials.api_key.clone(),
        timeout,
        policy,
    ) {
        Ok(client) => match read_database(&client).await {
            Ok(snapshot) if snapshot.dbuuid == credentials.dbuuid => Ok(snapshot),
            Ok(snapshot) => Err(format!("database.uuid is now {}", snapshot.dbuuid)),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let (store, dbuuid) = (store.clone(), dbuuid.to_owned());
    let result = outcome
        .as_ref()
        .map(|snapshot| Refreshed {
            dbuuid: dbuuid.clone(),
            refreshed: true,
            companies: snapshot.companies.len(),
            accounts: snapshot.accounts.len(),
            protocol: snapshot.protocol.to_string(),
        })
        .map_err(Clone::clone);
    let rules = *rules;
    let audit = audit.map(|(record, detail)| record.with_detail(detail(&result)));
    tokio::task::spawn_blocking(move || {
        let saved = outcome.as_ref().map_err(Clone::clone);
        match &audit {
            Some(audit) => store.save_refresh_audited(&dbuuid, saved, audit)?,
            None => store.save_refresh(&dbuuid, saved)?,
        }
        if let Ok(snapshot) = &outcome {
            open_accounts(&store, &rules, snapshot)?;
        }
        Ok::<_, AppError>(())
    })
    .await
    .map_err(|e| AppError::from(crate::ledger::StorageError::failed(e)))??;
    Ok(result)
}
