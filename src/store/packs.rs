//! Packs of credits on sale per service.

use super::audit::{AuditRecord, AuditWith, write_audit_record};
use super::orders::stored_price;
use super::rows::{convert, credits};
use super::schema::packs;
use super::{Store, read_tx, write_tx};
use crate::ledger::{ServiceId, Timestamp};
use crate::payments::{Pack, PackId, PackInput, PaymentError};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::result::Error as DieselError;

#[derive(Queryable, Selectable)]
#[diesel(table_name = packs)]
pub(super) struct PackRow {
    pub(super) id: PackId,
    pub(super) service_id: ServiceId,
    pub(super) name: String,
    pub(super) credits: i64,
    pub(super) price_minor: i64,
    pub(super) currency: String,
    pub(super) active: bool,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl TryFrom<PackRow> for Pack {
    type Error = DieselError;
    fn try_from(r: PackRow) -> Result<Self, Self::Error> {
        Ok(Pack {
            id: r.id,
            service_id: r.service_id,
            name: r.name,
            credits: credits(r.credits)?,
            price: stored_price(r.price_minor, &r.currency)?,
            active: r.active,
            created_at: Timestamp::from_micros(r.created_at),
            updated_at: Timestamp::from_micros(r.updated_at),
        })
    }
}

pub(super) fn pack_conflict(e: DieselError, name: &str) -> PaymentError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            PaymentError::Conflict(format!("the service already has a pack named {name:?}"))
        }
        other => other.into(),
    }
}

impl Store {
    /// Adds a pack to a service.
    pub fn create_pack(
        &self,
        service_id: ServiceId,
        input: &PackInput,
    ) -> Result<Pack, PaymentError> {
        self.create_pack_with(service_id, input, None)
    }

    /// [`Store::create_pack`] by an operator, audited in the same transaction;
    /// `detail` names the new pack.
    pub fn create_pack_audited(
        &self,
        service_id: ServiceId,
        input: &PackInput,
        audit: &AuditRecord,
        detail: fn(&Pack) -> String,
    ) -> Result<Pack, PaymentError> {
        self.create_pack_with(service_id, input, Some((audit, detail)))
    }

    fn create_pack_with(
        &self,
        service_id: ServiceId,
        input: &PackInput,
        audit: Option<AuditWith<'_, Pack>>,
    ) -> Result<Pack, PaymentError> {
        input.validate()?;
        let now = self.now().micros();
        let name = input.name.trim();
        let row: Pack = write_tx!(self, |c| {
            let row = diesel::insert_into(packs::table)
                .values((
                    packs::service_id.eq(service_id),
                    packs::name.eq(name),
                    packs::credits.eq(input.credits.units()),
                    packs::price_minor.eq(input.price.minor),
                    packs::currency.eq(&input.price.currency),
                    packs::active.eq(input.active),
                    packs::created_at.eq(now),
                    packs::updated_at.eq(now),
                ))
                .returning(PackRow::as_returning())
                .get_result::<PackRow>(c)
                .map_err(|e| pack_conflict(e, name))?;
            let pack = Pack::try_from(row)?;
            if let Some((audit, detail)) = audit {
                write_audit_record(c, now, &audit.with_detail(detail(&pack)))?;
            }
            Ok::<_, PaymentError>(pack)
        })?;
        Ok(row)
    }

    /// Changes a pack of `service_id` (a pack of another service is not found).
    pub fn update_pack(
        &self,
        service_id: ServiceId,
        pack_id: PackId,
        input: &PackInput,
    ) -> Result<Pack, PaymentError> {
        self.update_pack_with(service_id, pack_id, input, None)
    }

    /// [`Store::update_pack`] by an operator, audited in the same transaction (none
    /// when there is no such pack).
    pub fn update_pack_audited(
        &self,
        service_id: ServiceId,
        pack_id: PackId,
        input: &PackInput,
        audit: &AuditRecord,
    ) -> Result<Pack, PaymentError> {
        self.update_pack_with(service_id, pack_id, input, Some(audit))
    }

    fn update_pack_with(
        &self,
        service_id: ServiceId,
        pack_id: PackId,
        input: &PackInput,
        audit: Option<&AuditRecord>,
    ) -> Result<Pack, PaymentError> {
        input.validate()?;
        let now = self.now().micros();
        let name = input.name.trim();
        let row: Option<PackRow> = write_tx!(self, |c| {
            let row = diesel::update(
                packs::table
                    .filter(packs::id.eq(pack_id))
                    .filter(packs::service_id.eq(service_id)),
            )
            .set((
                packs::name.eq(name),
                packs::credits.eq(input.credits.units()),
                packs::price_minor.eq(input.price.minor),
                packs::currency.eq(&input.price.currency),
                packs::active.eq(input.active),
                packs::updated_at.eq(now),
            ))
            .returning(PackRow::as_returning())
            .get_result::<PackRow>(c)
            .optional()
            .map_err(|e| pack_conflict(e, name))?;
            if let (Some(_), Some(audit)) = (&row, audit) {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, PaymentError>(row)
        })?;
        row.ok_or_else(|| PaymentError::NotFound(format!("no pack {pack_id} for this service")))?
            .try_into()
            .map_err(PaymentError::from)
    }

    /// The packs of a service, smallest first.
    pub fn packs(
        &self,
        service_id: ServiceId,
        active_only: bool,
    ) -> Result<Vec<Pack>, PaymentError> {
        let rows: Vec<PackRow> = read_tx!(self, |c| {
            let mut query = packs::table
                .filter(packs::service_id.eq(service_id))
                .order((packs::credits, packs::id))
                .select(PackRow::as_select())
                .into_boxed();
            if active_only {
                query = query.filter(packs::active.eq(true));
            }
            query.load::<PackRow>(c)
        })?;
        Ok(convert(rows)?)
    }
}
