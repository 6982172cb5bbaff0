//! Registered Odoo databases: credentials, tokens, the copy of their companies and accounts.

use super::audit::{AuditRecord, write_audit_record};
use super::schema::{accounts, journal, odoo_accounts, odoo_companies, odoo_databases, services};
use super::{Store, read_tx, write_tx};
use crate::config::Secret;
use crate::error::AppError;
use crate::ledger::token::{constant_time_eq, random_hex, sha256_hex};
use crate::ledger::{Account, Credits, EntryKind, LedgerError, Timestamp};
use crate::odoo::{OdooProtocol, Snapshot};
use diesel::prelude::*;

/// How the sidecar reaches a registered database.
#[derive(Clone, Debug)]
pub struct OdooCredentials {
    pub dbuuid: String,
    pub url: String,
    pub db_name: String,
    pub login: String,
    pub api_key: Secret,
}

/// A registered database as operators see it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseInfo {
    pub dbuuid: String,
    pub url: String,
    pub db_name: String,
    pub login: String,
    pub registered_at: Timestamp,
    pub refreshed_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// How the sidecar reads it: JSON-2 (Odoo 19 and later) or `/jsonrpc`.
    pub protocol: OdooProtocol,
    pub companies: Vec<(i64, String)>,
    pub accounts: usize,
}

/// Consumption attributed to one company through accounts restricted to it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompanyConsumption {
    pub company_id: i64,
    pub company: String,
    pub service: String,
    pub consumed: Credits,
}

pub(super) type DbRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

/// Why a registration of an already registered database is refused.
/// Why a registered database cannot be registered again without its token.
pub fn already_registered(dbuuid: &str) -> AppError {
    AppError::Conflict(format!(
        "database {dbuuid} is registered already: send its current database token, or ask \
         the operator to release it (iap-sidecar database release {dbuuid})"
    ))
}

/// Replaces the copy of a database's companies and accounts (inside the caller's
/// transaction; a macro so one body serves both backends).
macro_rules! replace_snapshot {
    ($c:ident, $database_id:expr, $snapshot:expr, $now:expr) => {{
        let database_id: i64 = $database_id;
        let snapshot: &Snapshot = $snapshot;
        let now: i64 = $now;
        // An account keeps the time its restriction was first seen while its companies
        // stay the same; a new or changed restriction starts now.
        let seen: Vec<(i64, String, Option<i64>)> = odoo_accounts::table
            .filter(odoo_accounts::database_id.eq(database_id))
            .select((
                odoo_accounts::iap_account_id,
                odoo_accounts::company_ids,
                odoo_accounts::restricted_since,
            ))
            .load($c)?;
        diesel::delete(odoo_companies::table.filter(odoo_companies::database_id.eq(database_id)))
            .execute($c)?;
        diesel::delete(odoo_accounts::table.filter(odoo_accounts::database_id.eq(database_id)))
            .execute($c)?;
        for (company_id, name) in &snapshot.companies {
            diesel::insert_into(odoo_companies::table)
                .values((
                    odoo_companies::database_id.eq(database_id),
                    odoo_companies::company_id.eq(company_id),
                    odoo_companies::name.eq(name),
                ))
                .execute($c)?;
        }
        for account in &snapshot.accounts {
            let company_ids = serde_json::to_string(&account.company_ids)
                .map_err(|e| AppError::from(crate::ledger::StorageError::failed(e)))?;
            let restricted_since = if account.company_ids.is_empty() {
                None
            } else {
                seen.iter()
                    .find(|(id, ids, _)| *id == account.id && *ids == company_ids)
                    .and_then(|(_, _, since)| *since)
                    .or(Some(now))
            };
            diesel::insert_into(odoo_accounts::table)
                .values((
                    odoo_accounts::database_id.eq(database_id),
                    odoo_accounts::iap_account_id.eq(account.id),
                    odoo_accounts::service_name.eq(&account.service_name),
                    odoo_accounts::token_hash.eq(&account.token_hash),
                    odoo_accounts::company_ids.eq(company_ids),
                    odoo_accounts::restricted_since.eq(restricted_since),
                ))
                .execute($c)?;
        }
        Ok::<(), AppError>(())
    }};
}

impl Store {
    /// The hash of a registered database's current token (`None`: not registered).
    pub fn database_token_hash(&self, dbuuid: &str) -> Result<Option<String>, AppError> {
        Ok(read_tx!(self, |c| {
            odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select(odoo_databases::token_hash)
                .first::<String>(c)
                .optional()
        })?)
    }

    /// Stores (or replaces) a database's credentials and what was read from it; returns
    /// the token its addon uses from now on (printed once, stored hashed).
    ///
    /// A registered database is replaced only by a caller presenting its current token
    /// (`current_token`): dbuuids travel in every IAP call, so they prove nothing.
    pub fn register_database(
        &self,
        credentials: &OdooCredentials,
        snapshot: &Snapshot,
        current_token: Option<&str>,
    ) -> Result<String, AppError> {
        let token = format!("iapdb_{}", random_hex(24));
        let hash = sha256_hex(&token);
        let presented = current_token.map(sha256_hex);
        let now = self.now().micros();
        write_tx!(self, |c| {
            let existing: Option<(i64, String)> = odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(&credentials.dbuuid))
                .select((odoo_databases::id, odoo_databases::token_hash))
                .first(c)
                .optional()?;
            let existing = match existing {
                Some((id, stored))
                    if presented
                        .as_deref()
                        .is_some_and(|p| constant_time_eq(&stored, p)) =>
                {
                    Some(id)
                }
                Some(_) => return Err(already_registered(&credentials.dbuuid)),
                None => None,
            };
            let values = (
                odoo_databases::url.eq(&credentials.url),
                odoo_databases::db_name.eq(&credentials.db_name),
                odoo_databases::login.eq(&credentials.login),
                odoo_databases::api_key.eq(credentials.api_key.expose()),
                odoo_databases::token_hash.eq(&hash),
                odoo_databases::refreshed_at.eq(Some(now)),
                odoo_databases::last_error.eq(None::<String>),
                odoo_databases::protocol.eq(snapshot.protocol.as_str()),
            );
            let id = match existing {
                Some(id) => {
                    diesel::update(odoo_databases::table.find(id))
                        .set(values)
                        .execute(c)?;
                    id
                }
                None => diesel::insert_into(odoo_databases::table)
                    .values((
                        odoo_databases::dbuuid.eq(&credentials.dbuuid),
                        odoo_databases::registered_at.eq(now),
                        values,
                    ))
                    .returning(odoo_databases::id)
                    .get_result(c)?,
            };
            replace_snapshot!(c, id, snapshot, now)
        })?;
        Ok(token)
    }

    /// Records a new read of a database (or why it failed, keeping the old copy).
    pub fn save_refresh(
        &self,
        dbuuid: &str,
        outcome: Result<&Snapshot, String>,
    ) -> Result<(), AppError> {
        self.save_refresh_with(dbuuid, outcome, None)
    }

    /// [`Store::save_refresh`] of a refresh an operator asked for, audited in the same
    /// transaction.
    pub fn save_refresh_audited(
        &self,
        dbuuid: &str,
        outcome: Result<&Snapshot, String>,
        audit: &AuditRecord,
    ) -> Result<(), AppError> {
        self.save_refresh_with(dbuuid, outcome, Some(audit))
    }

    fn save_refresh_with(
        &self,
        dbuuid: &str,
        outcome: Result<&Snapshot, String>,
        audit: Option<&AuditRecord>,
    ) -> Result<(), AppError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            if let Some(audit) = audit {
                // Written first, rolled back with the rest if the save fails.
                write_audit_record(c, now, audit)?;
            }
            let id: i64 = odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select(odoo_databases::id)
                .first(c)
                .optional()?
                .ok_or_else(|| AppError::Invalid(format!("database {dbuuid} is not registered")))?;
            match outcome {
                Ok(snapshot) => {
                    diesel::update(odoo_databases::table.find(id))
                        .set((
                            odoo_databases::refreshed_at.eq(Some(now)),
                            odoo_databases::last_error.eq(None::<String>),
                            odoo_databases::protocol.eq(snapshot.protocol.as_str()),
                        ))
                        .execute(c)?;
                    replace_snapshot!(c, id, snapshot, now)
                }
                Err(error) => {
                    diesel::update(odoo_databases::table.find(id))
                        .set(odoo_databases::last_error.eq(Some(error)))
                        .execute(c)?;
                    Ok(())
                }
            }
        })
    }

    pub fn database_credentials(&self, dbuuid: &str) -> Result<Option<OdooCredentials>, AppError> {
        let row: Option<(String, String, String, String)> = read_tx!(self, |c| {
            odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select((
                    odoo_databases::url,
                    odoo_databases::db_name,
                    odoo_databases::login,
                    odoo_databases::api_key,
                ))
                .first(c)
                .optional()
        })?;
        Ok(row.map(|(url, db_name, login, api_key)| OdooCredentials {
            dbuuid: dbuuid.to_owned(),
            url,
            db_name,
            login,
            api_key: Secret::new(api_key),
        }))
    }

    /// Whether `token` is the addon token of `dbuuid` (constant-time).
    pub fn verify_database_token(&self, dbuuid: &str, token: &str) -> Result<bool, AppError> {
        let hash = sha256_hex(token);
        let stored: Option<String> = read_tx!(self, |c| {
            odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select(odoo_databases::token_hash)
                .first::<String>(c)
                .optional()
        })?;
        Ok(stored.is_some_and(|s| constant_time_eq(&s, &hash)))
    }

    /// Forgets a database (credentials and the copy of its companies and accounts).
    pub fn delete_database(&self, dbuuid: &str) -> Result<bool, AppError> {
        self.delete_database_with(dbuuid, None)
    }

    /// [`Store::delete_database`] with the operator's audit line, written in the same
    /// transaction (none when there was nothing to forget).
    pub fn delete_database_audited(
        &self,
        dbuuid: &str,
        audit: &AuditRecord,
    ) -> Result<bool, AppError> {
        self.delete_database_with(dbuuid, Some(audit))
    }

    fn delete_database_with(
        &self,
        dbuuid: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, AppError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            let Some(id) = odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select(odoo_databases::id)
                .first::<i64>(c)
                .optional()?
            else {
                return Ok(false);
            };
            diesel::delete(odoo_companies::table.filter(odoo_companies::database_id.eq(id)))
                .execute(c)?;
            diesel::delete(odoo_accounts::table.filter(odoo_accounts::database_id.eq(id)))
                .execute(c)?;
            diesel::delete(odoo_databases::table.find(id)).execute(c)?;
            if let Some(audit) = audit {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, AppError>(true)
        })
    }

    pub fn list_databases(&self) -> Result<Vec<DatabaseInfo>, AppError> {
        read_tx!(self, |c| {
            let rows: Vec<DbRow> = odoo_databases::table
                .order(odoo_databases::dbuuid)
                .select((
                    odoo_databases::id,
                    odoo_databases::dbuuid,
                    odoo_databases::url,
                    odoo_databases::db_name,
                    odoo_databases::login,
                    odoo_databases::registered_at,
                    odoo_databases::refreshed_at,
                    odoo_databases::last_error,
                    odoo_databases::protocol,
                ))
                .load(c)?;
            let mut out = Vec::new();
            for (
                id,
                dbuuid,
                url,
                db_name,
                login,
                registered_at,
                refreshed_at,
                last_error,
                protocol,
            ) in rows
            {
                let protocol = OdooProtocol::parse(&protocol).ok_or_else(|| {
                    AppError::from(crate::ledger::StorageError::failed(format!(
                        "database {dbuuid}: unknown protocol {protocol:?}"
                    )))
                })?;
                let companies: Vec<(i64, String)> = odoo_companies::table
                    .filter(odoo_companies::database_id.eq(id))
                    .order(odoo_companies::company_id)
                    .select((odoo_companies::company_id, odoo_companies::name))
                    .load(c)?;
                let accounts: i64 = odoo_accounts::table
                    .filter(odoo_accounts::database_id.eq(id))
                    .count()
                    .get_result(c)?;
                out.push(DatabaseInfo {
                    dbuuid,
                    url,
                    db_name,
                    login,
                    registered_at: Timestamp::from_micros(registered_at),
                    refreshed_at: refreshed_at.map(Timestamp::from_micros),
                    last_error,
                    protocol,
                    companies,
                    accounts: usize::try_from(accounts).unwrap_or(0),
                });
            }
            Ok::<_, AppError>(out)
        })
    }

    /// Names of the companies an account is restricted to in its Odoo database (empty:
    /// shared by all companies, or the database is not registered).
    pub fn account_companies(&self, account: &Account) -> Result<Vec<String>, AppError> {
        read_tx!(self, |c| {
            let service: String = services::table
                .find(account.service_id)
                .select(services::technical_name)
                .first(c)?;
            let rows: Vec<(i64, String)> = odoo_accounts::table
                .filter(odoo_accounts::token_hash.eq(&account.token_hash))
                .filter(odoo_accounts::service_name.eq(&service))
                .select((odoo_accounts::database_id, odoo_accounts::company_ids))
                .load(c)?;
            let mut names = Vec::new();
            for (database_id, company_ids) in rows {
                let ids: Vec<i64> = serde_json::from_str(&company_ids).unwrap_or_default();
                let found: Vec<String> = odoo_companies::table
                    .filter(odoo_companies::database_id.eq(database_id))
                    .filter(odoo_companies::company_id.eq_any(&ids))
                    .order(odoo_companies::name)
                    .select(odoo_companies::name)
                    .load(c)?;
                names.extend(found);
            }
            names.dedup();
            Ok::<_, AppError>(names)
        })
    }

    /// Credits captured on accounts restricted to each company of `dbuuid` (an account
    /// restricted to several companies counts for each of them), counting only captures
    /// recorded since the sidecar first saw the account's current restriction: what the
    /// account consumed while shared belongs to no company.
    pub fn company_consumption(&self, dbuuid: &str) -> Result<Vec<CompanyConsumption>, AppError> {
        read_tx!(self, |c| {
            let Some(id) = odoo_databases::table
                .filter(odoo_databases::dbuuid.eq(dbuuid))
                .select(odoo_databases::id)
                .first::<i64>(c)
                .optional()?
            else {
                return Ok(Vec::new());
            };
            let companies: Vec<(i64, String)> = odoo_companies::table
                .filter(odoo_companies::database_id.eq(id))
                .select((odoo_companies::company_id, odoo_companies::name))
                .load(c)?;
            let restricted: Vec<(String, String, String, Option<i64>)> = odoo_accounts::table
                .filter(odoo_accounts::database_id.eq(id))
                .filter(odoo_accounts::company_ids.ne("[]"))
                .select((
                    odoo_accounts::service_name,
                    odoo_accounts::token_hash,
                    odoo_accounts::company_ids,
                    odoo_accounts::restricted_since,
                ))
                .load(c)?;
            let mut out: Vec<CompanyConsumption> = Vec::new();
            for (service, token_hash, company_ids, restricted_since) in restricted {
                // Every restricted row gets a time when it is stored; none means the
                // sidecar cannot vouch for any moment, so nothing is attributed.
                let since = restricted_since.unwrap_or(i64::MAX);
                // Summed here: SUM(BIGINT) is NUMERIC on PostgreSQL.
                let captured: i64 = journal::table
                    .inner_join(accounts::table.inner_join(services::table))
                    .filter(accounts::token_hash.eq(&token_hash))
                    .filter(services::technical_name.eq(&service))
                    .filter(journal::kind.eq(EntryKind::Capture.as_str()))
                    .filter(journal::recorded_at.ge(since))
                    .select(journal::amount)
                    .load::<i64>(c)?
                    .iter()
                    .sum();
                let consumed =
                    Credits::from_units(captured.saturating_neg()).map_err(LedgerError::from)?;
                let ids: Vec<i64> = serde_json::from_str(&company_ids).unwrap_or_default();
                for company_id in ids {
                    let company = companies
                        .iter()
                        .find(|(cid, _)| *cid == company_id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| format!("company {company_id}"));
                    match out
                        .iter_mut()
                        .find(|e| e.company_id == company_id && e.service == service)
                    {
                        Some(entry) => {
                            entry.consumed = entry
                                .consumed
                                .checked_add(consumed)
                                .map_err(LedgerError::from)?
                        }
                        None => out.push(CompanyConsumption {
                            company_id,
                            company,
                            service: service.clone(),
                            consumed,
                        }),
                    }
                }
            }
            out.sort_by(|a, b| (a.company_id, &a.service).cmp(&(b.company_id, &b.service)));
            Ok::<_, AppError>(out)
        })
    }
}
