//! Trial grants: once per account and once per database.

use super::schema::trial_grants;
use super::{Store, read_tx, write_tx};
use crate::ledger::ops::{Grant, GrantOutcome};
use crate::ledger::repo::HoldRepo;
use crate::ledger::{AccountId, EntryKind, LedgerError, Service, ops};
use crate::telemetry::METRICS;
use diesel::prelude::*;

impl Store {
    /// Whether `account_id` certainly can receive no trial any more (known from memory).
    pub fn trial_settled(&self, service: &Service, account_id: AccountId, dbuuid: &str) -> bool {
        service.trial_credits.is_zero()
            || self.lookups.trial_settled_for(account_id)
            || self.lookups.trial_claimed(service.id, dbuuid)
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
    pub fn account_had_trial(&self, account_id: AccountId) -> Result<bool, LedgerError> {
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

    /// Gives the service's trial credits to `account_id` for `dbuuid` unless the account
    /// or the database already had them (both are unique keys of `trial_grants`); the
    /// claim and the lot are one transaction. Whether the account may claim for `dbuuid`
    /// is the caller's rule (see `usecase::contact`).
    pub fn grant_trial_once(
        &self,
        service: &Service,
        account_id: AccountId,
        dbuuid: &str,
    ) -> Result<Option<GrantOutcome>, LedgerError> {
        if dbuuid.is_empty() || self.trial_settled(service, account_id, dbuuid) {
            return Ok(None);
        }
        let now = self.now();
        let expires_at = service.trial_expiry(now);
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
}
