//! Database rows and their conversion to ledger records.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;

use super::schema::*;
use crate::ledger::{
    Account, AccountId, AccountState, AlertSettings, Allocation, Credits, EntryKind, Hold, HoldId,
    HoldStatus, JournalEntry, Lot, LotId, Service, ServiceId, Timestamp,
};

/// Lets typed ids be column values: each is stored as the `BIGINT` of its table on both
/// backends, so queries compare, bind and load ids with no number in between. This is the
/// one place ids and the stored numbers meet (`from_stored`, `stored`).
macro_rules! stored_ids {
    ($($id:ty),+ $(,)?) => {$(
        const _: () = {
            /// Stands for the id in diesel's derives (`foreign_derive` implements them
            /// for the field's type).
            #[derive(diesel::AsExpression, diesel::FromSqlRow)]
            #[diesel(foreign_derive, sql_type = BigInt)]
            #[allow(dead_code)]
            struct Stored($id);

            impl FromSql<BigInt, Pg> for $id {
                fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                    <i64 as FromSql<BigInt, Pg>>::from_sql(bytes).map(<$id>::from_stored)
                }
            }

            impl FromSql<BigInt, Sqlite> for $id {
                fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
                    <i64 as FromSql<BigInt, Sqlite>>::from_sql(bytes).map(<$id>::from_stored)
                }
            }

            impl ToSql<BigInt, Pg> for $id {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    <i64 as ToSql<BigInt, Pg>>::to_sql(&self.stored(), &mut out.reborrow())
                }
            }

            impl ToSql<BigInt, Sqlite> for $id {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                    out.set_value(self.stored());
                    Ok(serialize::IsNull::No)
                }
            }
        };
    )+};
}

stored_ids!(
    AccountId,
    ServiceId,
    HoldId,
    LotId,
    crate::payments::PackId,
    crate::payments::OrderId,
    crate::sms::SmsMessageId,
    crate::sms::SmsReportId,
    super::alert_outbox::AlertId,
    super::audit::AuditLineId,
    super::admin_tokens::AdminTokenId,
);

/// A stored value that does not fit the domain: a corrupt row, surfaced as an error.
pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("corrupt {what}: {value}").into())
}

pub(crate) fn credits(units: i64) -> Result<Credits, diesel::result::Error> {
    Credits::from_units(units).map_err(|_| corrupt("amount", units))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = services)]
pub struct ServiceRow {
    pub id: ServiceId,
    pub technical_name: String,
    pub label: String,
    pub unit_name: String,
    pub integer_balance: bool,
    pub key_hash: String,
    pub trial_credits: i64,
    pub trial_days: i32,
    pub created_at: i64,
    pub open_to_all: bool,
}

impl TryFrom<ServiceRow> for Service {
    type Error = diesel::result::Error;
    fn try_from(r: ServiceRow) -> Result<Self, Self::Error> {
        Ok(Service {
            id: r.id,
            technical_name: r.technical_name,
            label: r.label,
            unit_name: r.unit_name,
            integer_balance: r.integer_balance,
            key_hash: r.key_hash,
            trial_credits: credits(r.trial_credits)?,
            trial_days: r.trial_days,
            created_at: Timestamp::from_micros(r.created_at),
            open_to_all: r.open_to_all,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: AccountId,
    pub service_id: ServiceId,
    pub token_hash: String,
    pub token_hint: String,
    pub dbuuid: Option<String>,
    pub state: String,
    pub disabled: bool,
    pub balance: i64,
    pub reserved: i64,
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub warning_threshold: i64,
    pub warn_me: bool,
    pub warning_emails: String,
    pub alert_armed: bool,
}

impl TryFrom<AccountRow> for Account {
    type Error = diesel::result::Error;
    fn try_from(r: AccountRow) -> Result<Self, Self::Error> {
        Ok(Account {
            id: r.id,
            service_id: r.service_id,
            token_hash: r.token_hash,
            token_hint: r.token_hint,
            dbuuid: r.dbuuid,
            state: AccountState::parse(&r.state).ok_or_else(|| corrupt("state", &r.state))?,
            disabled: r.disabled,
            balance: credits(r.balance)?,
            reserved: credits(r.reserved)?,
            last_seq: r.last_seq,
            created_at: Timestamp::from_micros(r.created_at),
            updated_at: Timestamp::from_micros(r.updated_at),
            alert_armed: r.alert_armed,
            alerts: AlertSettings {
                threshold: credits(r.warning_threshold)?,
                warn_me: r.warn_me,
                recipients: serde_json::from_str(&r.warning_emails)
                    .map_err(|_| corrupt("warning_emails", &r.warning_emails))?,
            },
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = lots)]
pub struct LotRow {
    pub id: LotId,
    pub account_id: AccountId,
    pub amount: i64,
    pub remaining: i64,
    pub expires_at: i64,
    pub origin: String,
    pub reference: Option<String>,
    pub created_at: i64,
}

impl TryFrom<LotRow> for Lot {
    type Error = diesel::result::Error;
    fn try_from(r: LotRow) -> Result<Self, Self::Error> {
        Ok(Lot {
            id: r.id,
            account_id: r.account_id,
            amount: credits(r.amount)?,
            remaining: credits(r.remaining)?,
            expires_at: Timestamp::from_micros(r.expires_at),
            origin: EntryKind::parse(&r.origin).ok_or_else(|| corrupt("origin", &r.origin))?,
            reference: r.reference,
            created_at: Timestamp::from_micros(r.created_at),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = holds)]
pub struct HoldRow {
    pub id: HoldId,
    pub account_id: AccountId,
    pub token_hash: String,
    pub amount: i64,
    pub status: String,
    pub captured: Option<i64>,
    pub description: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub closed_at: Option<i64>,
}

impl TryFrom<HoldRow> for Hold {
    type Error = diesel::result::Error;
    fn try_from(r: HoldRow) -> Result<Self, Self::Error> {
        Ok(Hold {
            id: r.id,
            account_id: r.account_id,
            token_hash: r.token_hash,
            amount: credits(r.amount)?,
            status: HoldStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            captured: r.captured.map(credits).transpose()?,
            description: r.description,
            created_at: Timestamp::from_micros(r.created_at),
            expires_at: Timestamp::from_micros(r.expires_at),
            closed_at: r.closed_at.map(Timestamp::from_micros),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = hold_allocations)]
pub struct AllocationRow {
    pub hold_id: HoldId,
    pub lot_id: LotId,
    pub amount: i64,
}

impl TryFrom<AllocationRow> for Allocation {
    type Error = diesel::result::Error;
    fn try_from(r: AllocationRow) -> Result<Self, Self::Error> {
        Ok(Allocation {
            hold_id: r.hold_id,
            lot_id: r.lot_id,
            amount: credits(r.amount)?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = journal)]
pub struct JournalRow {
    pub account_id: AccountId,
    pub seq: i64,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub hold_id: Option<HoldId>,
    pub lot_id: Option<LotId>,
    pub description: Option<String>,
    pub effective_at: i64,
    pub recorded_at: i64,
}

impl TryFrom<JournalRow> for JournalEntry {
    type Error = diesel::result::Error;
    fn try_from(r: JournalRow) -> Result<Self, Self::Error> {
        Ok(JournalEntry {
            account_id: r.account_id,
            seq: r.seq,
            kind: EntryKind::parse(&r.kind).ok_or_else(|| corrupt("kind", &r.kind))?,
            amount_units: r.amount,
            balance_after: credits(r.balance_after)?,
            hold_id: r.hold_id,
            lot_id: r.lot_id,
            description: r.description,
            effective_at: Timestamp::from_micros(r.effective_at),
            recorded_at: Timestamp::from_micros(r.recorded_at),
        })
    }
}

/// Converts a list of rows, failing on the first corrupt one.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, diesel::result::Error>
where
    T: TryFrom<R, Error = diesel::result::Error>,
{
    rows.into_iter().map(T::try_from).collect()
}
