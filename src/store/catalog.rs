//! Services and accounts: registration, lookup and listings.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::accounts::update_account;
use super::console::{AuditRecord, write_audit_record};
use super::rows::{AccountRow, HoldRow, JournalRow, LotRow, ServiceRow, convert};
use super::schema::{accounts, holds, journal, lots, services};
use super::{Store, read_one, read_tx, write_tx};
use crate::ledger::token::{AccountToken, constant_time_eq, sha256_hex};
use crate::ledger::{
    Account, AccountState, Hold, HoldStatus, Id, JournalEntry, LedgerError, Lot, NewService,
    Service,
};

/// Which accounts to list.
#[derive(Clone, Debug, Default)]
pub struct AccountFilter {
    pub service: Option<String>,
    pub dbuuid: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

fn conflict_on_unique(e: DieselError, what: String) -> LedgerError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            LedgerError::Conflict(what)
        }
        other => other.into(),
    }
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

impl Store {
    /// What the provider calls' fast path may use without touching the database: the
    /// service of a key, the account of a token (if current for this call), whether the
    /// database may use the service, whether its trial is settled. `None`: not known
    /// from memory, take the full path.
    pub fn remembered_service(&self, key: &str) -> Option<Service> {
        self.lookups.service(&sha256_hex(key))
    }

    pub fn remembered_account(
        &self,
        service_id: Id,
        token: &AccountToken,
        dbuuid: Option<&str>,
    ) -> Option<Account> {
        self.lookups
            .account(service_id, &token.storage_hash())
            .filter(|a| account_is_current(a, token, dbuuid))
    }

    /// Registers a service whose key hashes to `key_hash`.
    pub fn create_service(&self, new: &NewService, key_hash: &str) -> Result<Service, LedgerError> {
        self.create_service_with(new, key_hash, None)
    }

    /// [`Store::create_service`] by an operator, audited in the same transaction.
    pub fn create_service_audited(
        &self,
        new: &NewService,
        key_hash: &str,
        audit: &AuditRecord,
    ) -> Result<Service, LedgerError> {
        self.create_service_with(new, key_hash, Some(audit))
    }

    fn create_service_with(
        &self,
        new: &NewService,
        key_hash: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<Service, LedgerError> {
        new.validate()?;
        let now = self.now().micros();
        let row: ServiceRow = write_tx!(self, |c| {
            let row = diesel::insert_into(services::table)
                .values((
                    services::technical_name.eq(&new.technical_name),
                    services::label.eq(new.label.trim()),
                    services::unit_name.eq(new.unit_name.trim()),
                    services::integer_balance.eq(new.integer_balance),
                    services::key_hash.eq(key_hash),
                    services::trial_credits.eq(new.trial_credits.units()),
                    services::trial_days.eq(new.trial_days),
                    services::created_at.eq(now),
                ))
                .returning(ServiceRow::as_returning())
                .get_result::<ServiceRow>(c)
                .map_err(|e| conflict_on_unique(e, format!("service {:?}", new.technical_name)))?;
            if let Some(audit) = audit {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, LedgerError>(row)
        })?;
        Ok(row.try_into()?)
    }

    pub fn list_services(&self) -> Result<Vec<Service>, LedgerError> {
        let rows: Vec<ServiceRow> = read_tx!(self, |c| {
            services::table
                .order(services::technical_name)
                .select(ServiceRow::as_select())
                .load::<ServiceRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    pub fn service_by_name(&self, name: &str) -> Result<Service, LedgerError> {
        let row: Option<ServiceRow> = read_one!(self, |c| {
            services::table
                .filter(services::technical_name.eq(name))
                .select(ServiceRow::as_select())
                .first::<ServiceRow>(c)
                .optional()
        })?;
        row.map(Service::try_from)
            .transpose()?
            .ok_or_else(|| LedgerError::UnknownService(name.to_owned()))
    }

    /// The service a provider key belongs to, compared in constant time.
    pub fn service_by_key(&self, key: &str) -> Result<Option<Service>, LedgerError> {
        let hash = sha256_hex(key);
        let row: Option<ServiceRow> = read_one!(self, |c| {
            services::table
                .filter(services::key_hash.eq(&hash))
                .select(ServiceRow::as_select())
                .first::<ServiceRow>(c)
                .optional()
        })?;
        Ok(row
            .filter(|r| constant_time_eq(&r.key_hash, &hash))
            .map(Service::try_from)
            .transpose()?)
    }

    /// [`Store::service_by_key`] for provider calls: reuses a recent answer (see
    /// `database.lookup_cache_ms`).
    pub fn service_by_key_cached(&self, key: &str) -> Result<Option<Service>, LedgerError> {
        let hash = sha256_hex(key);
        if let Some(service) = self.lookups.service(&hash) {
            return Ok(Some(service));
        }
        let found = self.service_by_key(key)?;
        if let Some(service) = &found {
            self.lookups.keep_service(&hash, service);
        }
        Ok(found)
    }

    /// Replaces a service's key; the old key stops working at once.
    pub fn set_service_key(&self, name: &str, key_hash: &str) -> Result<Service, LedgerError> {
        self.set_service_key_with(name, key_hash, None)
    }

    /// [`Store::set_service_key`] by an operator, audited in the same transaction (none
    /// when there is no such service).
    pub fn set_service_key_audited(
        &self,
        name: &str,
        key_hash: &str,
        audit: &AuditRecord,
    ) -> Result<Service, LedgerError> {
        self.set_service_key_with(name, key_hash, Some(audit))
    }

    fn set_service_key_with(
        &self,
        name: &str,
        key_hash: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<Service, LedgerError> {
        let now = self.now().micros();
        self.lookups.services_changed();
        let row: Option<ServiceRow> = write_tx!(self, |c| {
            let row = diesel::update(services::table.filter(services::technical_name.eq(name)))
                .set(services::key_hash.eq(key_hash))
                .returning(ServiceRow::as_returning())
                .get_result::<ServiceRow>(c)
                .optional()?;
            if let (Some(_), Some(audit)) = (&row, audit) {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, LedgerError>(row)
        })?;
        self.lookups.services_changed();
        row.map(Service::try_from)
            .transpose()?
            .ok_or_else(|| LedgerError::UnknownService(name.to_owned()))
    }

    /// The account of `token` for `service`, opened if unknown. `dbuuid` becomes its
    /// database when it has none yet (never replaced); whether a caller may name one is
    /// `usecase::contact`'s rule. Remembers whether the token carries `+disabled`.
    pub fn ensure_account(
        &self,
        service_id: Id,
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
        service_id: Id,
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
        service_id: Id,
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
        service_id: Id,
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

    pub fn account(&self, id: Id) -> Result<Account, LedgerError> {
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

    /// Journal entries, newest first, strictly before `before_seq` when given.
    pub fn journal(
        &self,
        account_id: Id,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, LedgerError> {
        let rows: Vec<JournalRow> = read_tx!(self, |c| {
            journal::table
                .filter(journal::account_id.eq(account_id))
                .filter(journal::seq.lt(before_seq.unwrap_or(i64::MAX)))
                .order(journal::seq.desc())
                .limit(limit)
                .select(JournalRow::as_select())
                .load::<JournalRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Up to `limit` journal entries of an account after `after_seq` (all, when `None`),
    /// oldest first: the keyset page an export reads at a time.
    pub fn journal_after(
        &self,
        account_id: Id,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, LedgerError> {
        let rows: Vec<JournalRow> = read_tx!(self, |c| {
            journal::table
                .filter(journal::account_id.eq(account_id))
                .filter(journal::seq.gt(after_seq.unwrap_or(i64::MIN)))
                .order(journal::seq.asc())
                .limit(limit)
                .select(JournalRow::as_select())
                .load::<JournalRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Lots with credits left (expired ones included until settled).
    pub fn lots(&self, account_id: Id) -> Result<Vec<Lot>, LedgerError> {
        let rows: Vec<LotRow> = read_tx!(self, |c| {
            lots::table
                .filter(lots::account_id.eq(account_id))
                .filter(lots::remaining.gt(0))
                .order((lots::expires_at, lots::id))
                .select(LotRow::as_select())
                .load::<LotRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Holds not yet captured, cancelled or closed by expiry.
    pub fn open_holds(&self, account_id: Id) -> Result<Vec<Hold>, LedgerError> {
        let rows: Vec<HoldRow> = read_tx!(self, |c| {
            holds::table
                .filter(holds::account_id.eq(account_id))
                .filter(holds::status.eq(HoldStatus::Open.as_str()))
                .order(holds::id)
                .select(HoldRow::as_select())
                .load::<HoldRow>(c)
        })?;
        Ok(convert(rows)?)
    }
}
