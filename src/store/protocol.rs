//! What the IAP protocol needs beyond the ledger: accounts by token across services,
//! alert settings, which databases may use a service, and trial credits.

use diesel::prelude::*;

use super::accounts::update_account;
use super::console::{AuditRecord, write_audit_record};
use super::rows::{AccountRow, ServiceRow, convert};
use super::schema::{accounts, service_databases, services, trial_grants};
use super::{Store, read_tx, write_tx};
use crate::ledger::ops::{self, Grant, GrantOutcome};
use crate::ledger::repo::HoldRepo;
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::token::AccountToken;
use crate::ledger::{
    Account, Credits, EntryKind, Id, LedgerError, Recipient, Service, Timestamp, time::NEVER,
};
use crate::telemetry::METRICS;

/// Changes to an account's low-credit alert; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct AlertUpdate {
    pub threshold: Option<Credits>,
    pub warn_me: Option<bool>,
    pub recipients: Option<Vec<Recipient>>,
}

impl Store {
    /// Every account of this token, whatever the service (Odoo 17 sends tokens alone).
    pub fn accounts_by_token(
        &self,
        token: &AccountToken,
    ) -> Result<Vec<(Account, Service)>, LedgerError> {
        let hash = token.storage_hash();
        let rows: Vec<(AccountRow, ServiceRow)> = read_tx!(self, |c| {
            accounts::table
                .inner_join(services::table)
                .filter(accounts::token_hash.eq(&hash))
                .order(accounts::id)
                .select((AccountRow::as_select(), ServiceRow::as_select()))
                .load::<(AccountRow, ServiceRow)>(c)
        })?;
        rows.into_iter()
            .map(|(a, s)| Ok((Account::try_from(a)?, Service::try_from(s)?)))
            .collect()
    }

    /// Updates the alert settings of one account and returns it.
    pub fn set_alerts(&self, account_id: Id, update: &AlertUpdate) -> Result<Account, LedgerError> {
        let emails = update
            .recipients
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| LedgerError::from(crate::ledger::StorageError::failed(e)))?;
        let row: AccountRow = write_tx!(self, |c| {
            let current = c
                .lock_account(account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            let threshold = update.threshold.unwrap_or(current.alerts.threshold);
            let warn_me = update.warn_me.unwrap_or(current.alerts.warn_me);
            // Alerts turned on or moved: whatever happened while they were off, an account
            // at or over its threshold now is armed, so its next fall under it is told.
            // (Saving the same settings again changes nothing: a cancel that lifted the
            // account back over stays silent, as it does without a save.)
            let changed =
                threshold != current.alerts.threshold || warn_me != current.alerts.warn_me;
            let available = current.balance.saturating_sub(current.reserved);
            let armed = current.alert_armed || (changed && available >= threshold);
            update_account(
                accounts::table.find(account_id),
                (
                    accounts::warning_threshold.eq(threshold.units()),
                    accounts::warn_me.eq(warn_me),
                    accounts::alert_armed.eq(armed),
                ),
            )
            .execute(c)?;
            if let Some(emails) = &emails {
                update_account(
                    accounts::table.find(account_id),
                    accounts::warning_emails.eq(emails),
                )
                .execute(c)?;
            }
            Ok::<_, LedgerError>(
                accounts::table
                    .find(account_id)
                    .select(AccountRow::as_select())
                    .first::<AccountRow>(c)?,
            )
        })?;
        Ok(row.try_into()?)
    }

    /// Whether the database `dbuuid` may use `service` (unknown database: only when open).
    /// [`Store::service_allows`] from memory only (see [`Store::remembered_service`]).
    pub fn remembered_allows(&self, service: &Service, dbuuid: Option<&str>) -> Option<bool> {
        if service.open_to_all {
            return Some(true);
        }
        self.lookups.allowed(service.id, dbuuid?)
    }

    /// Whether `account_id` certainly can receive no trial any more (known from memory).
    pub fn trial_settled(&self, service: &Service, account_id: Id, dbuuid: &str) -> bool {
        service.trial_credits.is_zero()
            || self.lookups.trial_settled_for(account_id)
            || self.lookups.trial_claimed(service.id, dbuuid)
    }

    pub fn service_allows(
        &self,
        service: &Service,
        dbuuid: Option<&str>,
    ) -> Result<bool, LedgerError> {
        if service.open_to_all {
            return Ok(true);
        }
        let Some(dbuuid) = dbuuid else {
            return Ok(false);
        };
        if let Some(allowed) = self.lookups.allowed(service.id, dbuuid) {
            return Ok(allowed);
        }
        let found: Option<String> = read_tx!(self, |c| {
            service_databases::table
                .filter(service_databases::service_id.eq(service.id))
                .filter(service_databases::dbuuid.eq(dbuuid))
                .select(service_databases::dbuuid)
                .first::<String>(c)
                .optional()
        })?;
        self.lookups
            .keep_allowed(service.id, dbuuid, found.is_some());
        Ok(found.is_some())
    }

    /// The databases listed for a service, sorted.
    pub fn service_databases(&self, service_id: Id) -> Result<Vec<String>, LedgerError> {
        Ok(read_tx!(self, |c| {
            service_databases::table
                .filter(service_databases::service_id.eq(service_id))
                .order(service_databases::dbuuid)
                .select(service_databases::dbuuid)
                .load::<String>(c)
        })?)
    }

    /// Opens a service to every database, or limits it to `dbuuids` (replacing the list).
    pub fn set_service_databases(
        &self,
        name: &str,
        open_to_all: bool,
        dbuuids: &[String],
    ) -> Result<(Service, Vec<String>), LedgerError> {
        self.set_service_databases_with(name, open_to_all, dbuuids, None)
    }

    /// [`Store::set_service_databases`] by an operator, audited in the same transaction.
    pub fn set_service_databases_audited(
        &self,
        name: &str,
        open_to_all: bool,
        dbuuids: &[String],
        audit: &AuditRecord,
    ) -> Result<(Service, Vec<String>), LedgerError> {
        self.set_service_databases_with(name, open_to_all, dbuuids, Some(audit))
    }

    fn set_service_databases_with(
        &self,
        name: &str,
        open_to_all: bool,
        dbuuids: &[String],
        audit: Option<&AuditRecord>,
    ) -> Result<(Service, Vec<String>), LedgerError> {
        let now = self.now().micros();
        for db in dbuuids {
            if db.trim().is_empty() || db.len() > 64 {
                return Err(LedgerError::Invalid(format!(
                    "database uuid {db:?} must be 1-64 characters"
                )));
            }
        }
        self.lookups.services_changed();
        let row: ServiceRow = write_tx!(self, |c| {
            let row = diesel::update(services::table.filter(services::technical_name.eq(name)))
                .set(services::open_to_all.eq(open_to_all))
                .returning(ServiceRow::as_returning())
                .get_result::<ServiceRow>(c)
                .optional()?
                .ok_or_else(|| LedgerError::UnknownService(name.to_owned()))?;
            diesel::delete(
                service_databases::table.filter(service_databases::service_id.eq(row.id)),
            )
            .execute(c)?;
            for db in dbuuids {
                diesel::insert_into(service_databases::table)
                    .values((
                        service_databases::service_id.eq(row.id),
                        service_databases::dbuuid.eq(db.trim()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            if let Some(audit) = audit {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, LedgerError>(row)
        })?;
        self.lookups.services_changed();
        let service = Service::try_from(row)?;
        let listed = self.service_databases(service.id)?;
        Ok((service, listed))
    }

    /// Whether `dbuuid` already received the service's trial credits.
    pub fn database_had_trial(&self, service: &Service, dbuuid: &str) -> Result<bool, LedgerError> {
        if self.lookups.trial_claimed(service.id, dbuuid) {
            return Ok(true);
        }
        let granted: Option<String> = read_tx!(self, |c| {
            trial_grants::table
                .filter(trial_grants::service_id.eq(service.id))
                .filter(trial_grants::dbuuid.eq(dbuuid))
                .select(trial_grants::dbuuid)
                .first::<String>(c)
                .optional()
        })?;
        Ok(granted.is_some())
    }

    /// Whether `account_id` already received trial credits.
    pub fn account_had_trial(&self, account_id: Id) -> Result<bool, LedgerError> {
        if self.lookups.trial_settled_for(account_id) {
            return Ok(true);
        }
        let granted: Option<i64> = read_tx!(self, |c| {
            trial_grants::table
                .filter(trial_grants::account_id.eq(account_id))
                .select(trial_grants::account_id)
                .first::<i64>(c)
                .optional()
        })?;
        Ok(granted.is_some())
    }

    /// How many accounts belong to `dbuuid`.
    pub fn count_database_accounts(&self, dbuuid: &str) -> Result<i64, LedgerError> {
        Ok(read_tx!(self, |c| {
            accounts::table
                .filter(accounts::dbuuid.eq(dbuuid))
                .count()
                .get_result::<i64>(c)
        })?)
    }

    /// Gives the service's trial credits to `account_id` for `dbuuid` unless the account
    /// or the database already had them (both are unique keys of `trial_grants`); the
    /// claim and the lot are one transaction. Whether the account may claim for `dbuuid`
    /// is the caller's rule (see `usecase::contact`).
    pub fn grant_trial_once(
        &self,
        service: &Service,
        account_id: Id,
        dbuuid: &str,
    ) -> Result<Option<GrantOutcome>, LedgerError> {
        if dbuuid.is_empty() || self.trial_settled(service, account_id, dbuuid) {
            return Ok(None);
        }
        let now = self.now();
        let expires_at = if service.trial_days > 0 {
            Timestamp(
                now.micros()
                    .saturating_add(i64::from(service.trial_days) * MICROS_PER_DAY),
            )
        } else {
            NEVER
        };
        let description = format!("Trial credits for database {dbuuid}");
        let result = write_tx!(self, |c| {
            c.lock_account(account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            let claimed = diesel::insert_into(trial_grants::table)
                .values((
                    trial_grants::service_id.eq(service.id),
                    trial_grants::dbuuid.eq(dbuuid),
                    trial_grants::account_id.eq(account_id),
                    trial_grants::granted_at.eq(now.micros()),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            if claimed == 0 {
                return Ok(None);
            }
            let grant = Grant {
                account_id,
                amount: service.trial_credits,
                expires_at,
                origin: EntryKind::Trial,
                reference: None,
                description: Some(&description),
            };
            ops::grant(c, &grant, now).map(Some)
        });
        METRICS.ledger("trial", &result);
        match &result {
            // Given now: neither the account nor the database can have another.
            Ok(Some(_)) => {
                self.lookups.keep_trial_claimed(service.id, dbuuid);
                self.lookups.keep_trial_settled_for(account_id);
            }
            // One of the two keys was taken: this account can never have one for its
            // database (a database's claim is as permanent as an account's).
            Ok(None) => self.lookups.keep_trial_settled_for(account_id),
            Err(_) => {}
        }
        result
    }

    /// Every service, with the databases listed for the restricted ones.
    pub fn services_with_databases(&self) -> Result<Vec<(Service, Vec<String>)>, LedgerError> {
        let services: Vec<ServiceRow> = read_tx!(self, |c| {
            services::table
                .order(services::technical_name)
                .select(ServiceRow::as_select())
                .load::<ServiceRow>(c)
        })?;
        convert::<_, Service>(services)?
            .into_iter()
            .map(|s| {
                let dbs = self.service_databases(s.id)?;
                Ok((s, dbs))
            })
            .collect()
    }
}
