//! Services sold for credits: registered, keys, trials, the databases they are open to.

use super::audit::{AuditRecord, write_audit_record};
use super::rows::{ServiceRow, convert};
use super::schema::{service_databases, services};
use super::{Store, read_one, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::token::{constant_time_eq, sha256_hex};
use crate::ledger::{Credits, LedgerError, NewService, Service, ServiceId};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::result::Error as DieselError;

pub(super) fn conflict_on_unique(e: DieselError, what: String) -> AppError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            AppError::Conflict(what)
        }
        other => other.into(),
    }
}

impl Store {
    /// What the provider calls' fast path may use without touching the database: the
    /// service of a key, the account of a token (if current for this call), whether the
    /// database may use the service, whether its trial is settled. `None`: not known
    /// from memory, take the full path.
    pub fn remembered_service(&self, key: &str) -> Option<Service> {
        self.lookups.service(&sha256_hex(key))
    }

    /// Registers a service whose key hashes to `key_hash`.
    pub fn create_service(&self, new: &NewService, key_hash: &str) -> Result<Service, AppError> {
        self.create_service_with(new, key_hash, None)
    }

    /// [`Store::create_service`] by an operator, audited in the same transaction.
    pub fn create_service_audited(
        &self,
        new: &NewService,
        key_hash: &str,
        audit: &AuditRecord,
    ) -> Result<Service, AppError> {
        self.create_service_with(new, key_hash, Some(audit))
    }

    fn create_service_with(
        &self,
        new: &NewService,
        key_hash: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<Service, AppError> {
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
            Ok::<_, AppError>(row)
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

    /// The service with this id.
    pub fn service(&self, id: ServiceId) -> Result<Service, LedgerError> {
        let row: Option<ServiceRow> = read_tx!(self, |c| {
            services::table
                .find(id)
                .select(ServiceRow::as_select())
                .first::<ServiceRow>(c)
                .optional()
        })?;
        row.map(Service::try_from)
            .transpose()?
            .ok_or_else(|| LedgerError::UnknownService(format!("#{id}")))
    }

    /// Sets a service's trial credits (given once per database) and their lifetime.
    pub fn set_service_trial(
        &self,
        service_id: ServiceId,
        trial_credits: Credits,
        trial_days: i32,
    ) -> Result<Service, AppError> {
        self.set_service_trial_with(service_id, trial_credits, trial_days, None)
    }

    /// [`Store::set_service_trial`] by an operator, audited in the same transaction.
    pub fn set_service_trial_audited(
        &self,
        service_id: ServiceId,
        trial_credits: Credits,
        trial_days: i32,
        audit: &AuditRecord,
    ) -> Result<Service, AppError> {
        self.set_service_trial_with(service_id, trial_credits, trial_days, Some(audit))
    }

    fn set_service_trial_with(
        &self,
        service_id: ServiceId,
        trial_credits: Credits,
        trial_days: i32,
        audit: Option<&AuditRecord>,
    ) -> Result<Service, AppError> {
        let now = self.now().micros();
        if !crate::ledger::text::trial_days(trial_days) {
            return Err(AppError::Invalid(
                "trial days must be between 0 and 3650".into(),
            ));
        }
        self.lookups.services_changed();
        let row: Option<ServiceRow> = write_tx!(self, |c| {
            let row = diesel::update(services::table.find(service_id))
                .set((
                    services::trial_credits.eq(trial_credits.units()),
                    services::trial_days.eq(trial_days),
                ))
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
            .ok_or_else(|| LedgerError::UnknownService(format!("#{service_id}")).into())
    }

    /// Whether the database `dbuuid` may use `service` (unknown database: only when open).
    /// [`Store::service_allows`] from memory only (see [`Store::remembered_service`]).
    pub fn remembered_allows(&self, service: &Service, dbuuid: Option<&str>) -> Option<bool> {
        if service.open_to_all {
            return Some(true);
        }
        self.lookups.allowed(service.id, dbuuid?)
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
    pub fn service_databases(&self, service_id: ServiceId) -> Result<Vec<String>, LedgerError> {
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
    ) -> Result<(Service, Vec<String>), AppError> {
        self.set_service_databases_with(name, open_to_all, dbuuids, None)
    }

    /// [`Store::set_service_databases`] by an operator, audited in the same transaction.
    pub fn set_service_databases_audited(
        &self,
        name: &str,
        open_to_all: bool,
        dbuuids: &[String],
        audit: &AuditRecord,
    ) -> Result<(Service, Vec<String>), AppError> {
        self.set_service_databases_with(name, open_to_all, dbuuids, Some(audit))
    }

    fn set_service_databases_with(
        &self,
        name: &str,
        open_to_all: bool,
        dbuuids: &[String],
        audit: Option<&AuditRecord>,
    ) -> Result<(Service, Vec<String>), AppError> {
        let now = self.now().micros();
        for db in dbuuids {
            if !crate::ledger::text::dbuuid(db) {
                return Err(AppError::Invalid(format!(
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
