//! Writes to an `accounts` row. The ledger engine keeps accounts in memory and trusts
//! what it holds while the row's `lock_version` is the one it read, so every write to the
//! row goes through [`update_account`], which bumps it: no writer can forget to tell the
//! engine. (The one exception is PostgreSQL's batch write, `iap_engine_write`, which sets
//! the version the engine computed after checking the one it read, in the same statement.)
//!
//! Also: accounts opened, found by token (cached), listed; their alert settings.

use diesel::dsl::{Add, Eq, Update};
use diesel::prelude::*;
use diesel::query_builder::{AsChangeset, AsQuery, IntoUpdateTarget};

use super::rows::{AccountRow, ServiceRow, convert};
use super::schema::accounts;
use super::schema::services;
use super::{Store, read_one, read_tx, write_tx};
use crate::ledger::repo::HoldRepo;
use crate::ledger::token::AccountToken;
use crate::ledger::{
    Account, AccountId, AccountState, Credits, LedgerError, Recipient, Service, ServiceId,
};

/// The version bump every account write carries.
type Bump = Eq<accounts::lock_version, Add<accounts::lock_version, i64>>;

/// No column but the version, for a write that is there to take the row lock (see
/// `HoldRepo::lock_account`).
pub(crate) const NO_CHANGE: Option<Bump> = None;

/// The UPDATE of the accounts `target` selects that sets `changes` and bumps their
/// `lock_version`. It is built here and run by the caller (`execute`, or `returning` for
/// the row), so one function serves both backends' connections.
pub(crate) fn update_account<T, Ch>(target: T, changes: Ch) -> Update<T, (Ch, Bump)>
where
    T: IntoUpdateTarget<Table = accounts::table>,
    Ch: AsChangeset<Target = accounts::table>,
    Update<T, (Ch, Bump)>: AsQuery,
{
    diesel::update(target).set((
        changes,
        accounts::lock_version.eq(accounts::lock_version + 1),
    ))
}

/// Which accounts to list.
#[derive(Clone, Debug, Default)]
pub struct AccountFilter {
    pub service: Option<String>,
    pub dbuuid: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Whether a call with `token` (from `dbuuid`) has nothing to change on `known`: same
/// `+disabled` state, database already learnt.
pub(crate) fn account_is_current(
    known: &Account,
    token: &AccountToken,
    dbuuid: Option<&str>,
) -> bool {
    known.disabled == token.is_disabled() && (known.dbuuid.is_some() || dbuuid.is_none())
}

/// Changes to an account's low-credit alert; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct AlertUpdate {
    pub threshold: Option<Credits>,
    pub warn_me: Option<bool>,
    pub recipients: Option<Vec<Recipient>>,
}

impl Store {
    pub fn remembered_account(
        &self,
        service_id: ServiceId,
        token: &AccountToken,
        dbuuid: Option<&str>,
    ) -> Option<Account> {
        self.lookups
            .account(service_id, &token.storage_hash())
            .filter(|a| account_is_current(a, token, dbuuid))
    }

    /// The account of `token` for `service`, opened if unknown. `dbuuid` becomes its
    /// database when it has none yet (never replaced); whether a caller may name one is
    /// `usecase::contact`'s rule. Remembers whether the token carries `+disabled`.
    pub fn ensure_account(
        &self,
        service_id: ServiceId,
        token: &AccountToken,
        dbuuid: Option<&str>,
    ) -> Result<Account, LedgerError> {
        let known = self.find_account(service_id, token)?;
        self.ensure_known_account(known, service_id, token, dbuuid)
    }

    /// [`Store::ensure_account`] for a caller that already looked the account up: most
    /// contacts find it as it is and need no write lock at all.
    pub fn ensure_known_account(
        &self,
        known: Option<Account>,
        service_id: ServiceId,
        token: &AccountToken,
        dbuuid: Option<&str>,
    ) -> Result<Account, LedgerError> {
        if let Some(known) = known
            && account_is_current(&known, token, dbuuid)
        {
            return Ok(known);
        }
        let hash = token.storage_hash();
        let now = self.now().micros();
        let row: AccountRow = write_tx!(self, |c| {
            diesel::insert_into(accounts::table)
                .values((
                    accounts::service_id.eq(service_id),
                    accounts::token_hash.eq(&hash),
                    accounts::token_hint.eq(token.hint()),
                    accounts::dbuuid.eq(dbuuid),
                    accounts::state.eq(AccountState::Registered.as_str()),
                    accounts::disabled.eq(token.is_disabled()),
                    accounts::created_at.eq(now),
                    accounts::updated_at.eq(now),
                ))
                .on_conflict((accounts::service_id, accounts::token_hash))
                .do_nothing()
                .execute(c)?;
            let row = accounts::table
                .filter(accounts::service_id.eq(service_id))
                .filter(accounts::token_hash.eq(&hash))
                .select(AccountRow::as_select())
                .first::<AccountRow>(c)?;
            let learn_dbuuid = row.dbuuid.is_none() && dbuuid.is_some();
            if row.disabled != token.is_disabled() || learn_dbuuid {
                update_account(
                    accounts::table.find(row.id),
                    (
                        accounts::disabled.eq(token.is_disabled()),
                        accounts::dbuuid.eq(row.dbuuid.as_deref().or(dbuuid)),
                    ),
                )
                .returning(AccountRow::as_returning())
                .get_result::<AccountRow>(c)
            } else {
                Ok(row)
            }
        })?;
        let account = Account::try_from(row)?;
        self.lookups.forget_account(service_id, &hash);
        Ok(account)
    }

    /// [`Store::find_account`] for provider calls: reuses a recent answer, so only the
    /// fields that do not move with the ledger may be trusted (id, database, disabled).
    pub fn find_account_cached(
        &self,
        service_id: ServiceId,
        token: &AccountToken,
    ) -> Result<Option<Account>, LedgerError> {
        if let Some(account) = self.lookups.account(service_id, &token.storage_hash()) {
            return Ok(Some(account));
        }
        let found = self.find_account(service_id, token)?;
        if let Some(account) = &found {
            self.lookups.keep_account(account);
        }
        Ok(found)
    }

    /// The account of `token` for `service`, if it was ever seen.
    pub fn find_account(
        &self,
        service_id: ServiceId,
        token: &AccountToken,
    ) -> Result<Option<Account>, LedgerError> {
        let hash = token.storage_hash();
        let row: Option<AccountRow> = read_one!(self, |c| {
            accounts::table
                .filter(accounts::service_id.eq(service_id))
                .filter(accounts::token_hash.eq(&hash))
                .select(AccountRow::as_select())
                .first::<AccountRow>(c)
                .optional()
        })?;
        Ok(row.map(Account::try_from).transpose()?)
    }

    pub fn account(&self, id: AccountId) -> Result<Account, LedgerError> {
        let row: Option<AccountRow> = read_one!(self, |c| {
            accounts::table
                .find(id)
                .select(AccountRow::as_select())
                .first::<AccountRow>(c)
                .optional()
        })?;
        row.map(Account::try_from)
            .transpose()?
            .ok_or(LedgerError::UnknownAccount)
    }

    pub fn list_accounts(&self, filter: &AccountFilter) -> Result<Vec<Account>, LedgerError> {
        let service_id = match &filter.service {
            Some(name) => Some(self.service_by_name(name)?.id),
            None => None,
        };
        let rows: Vec<AccountRow> = read_tx!(self, |c| {
            let mut query = accounts::table
                .select(AccountRow::as_select())
                .order(accounts::id)
                .limit(filter.limit)
                .offset(filter.offset)
                .into_boxed();
            if let Some(id) = service_id {
                query = query.filter(accounts::service_id.eq(id));
            }
            if let Some(db) = &filter.dbuuid {
                query = query.filter(accounts::dbuuid.eq(db));
            }
            query.load::<AccountRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Accounts and their services, for the ids a portal session may see.
    pub fn accounts_with_services(
        &self,
        ids: &[AccountId],
    ) -> Result<Vec<(Account, Service)>, LedgerError> {
        let rows: Vec<(AccountRow, ServiceRow)> = read_tx!(self, |c| {
            accounts::table
                .inner_join(services::table)
                .filter(accounts::id.eq_any(ids))
                .order((services::label, accounts::id))
                .select((AccountRow::as_select(), ServiceRow::as_select()))
                .load::<(AccountRow, ServiceRow)>(c)
        })?;
        rows.into_iter()
            .map(|(a, s)| Ok((Account::try_from(a)?, Service::try_from(s)?)))
            .collect()
    }

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
    pub fn set_alerts(
        &self,
        account_id: AccountId,
        update: &AlertUpdate,
    ) -> Result<Account, LedgerError> {
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

    /// How many accounts belong to `dbuuid`.
    pub fn count_database_accounts(&self, dbuuid: &str) -> Result<i64, LedgerError> {
        Ok(read_tx!(self, |c| {
            accounts::table
                .filter(accounts::dbuuid.eq(dbuuid))
                .count()
                .get_result::<i64>(c)
        })?)
    }
}
