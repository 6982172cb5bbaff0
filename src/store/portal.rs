//! What the portal and payments need: packs, orders and their crediting, payment events,
//! the portal's signing secret, and consumption figures for charts and providers.

use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use super::accounts::update_account;
use super::console::{AuditRecord, AuditWith, write_audit_record};
use super::rows::{AccountRow, ServiceRow, credits};
use super::schema::{
    accounts, journal, orders, packs, payment_events, portal_revoked_sessions, portal_secrets,
    services,
};
use super::{Store, read_one, read_tx, write_tx};
use crate::ledger::ops::{self, Grant};
use crate::ledger::repo::{HoldRepo, LedgerRepo};
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::token::random_hex;
use crate::ledger::{
    Account, Credits, EntryKind, Id, LedgerError, Service, Timestamp, time::NEVER,
};
use crate::payments::webhook::{Event, EventKind};
use crate::payments::{
    ConfirmOutcome, Confirmation, EventOutcome, Order, OrderStatus, Pack, PackInput, PaymentError,
    Price,
};
use crate::telemetry::METRICS;

// Revenue is grouped by database and currency.
diesel::allow_columns_to_appear_in_same_group_by_clause!(accounts::dbuuid, orders::currency);

/// A customer may leave this many orders unpaid on one account; more are refused.
pub const MAX_PENDING_ORDERS: i64 = 20;

#[derive(Queryable, Selectable)]
#[diesel(table_name = packs)]
struct PackRow {
    id: i64,
    service_id: i64,
    name: String,
    credits: i64,
    price_minor: i64,
    currency: String,
    active: bool,
    created_at: i64,
    updated_at: i64,
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
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    id: i64,
    account_id: i64,
    pack_id: i64,
    pack_name: String,
    credits: i64,
    price_minor: i64,
    currency: String,
    status: String,
    created_at: i64,
    paid_at: Option<i64>,
    credited_at: Option<i64>,
    cancelled_at: Option<i64>,
    lot_id: Option<i64>,
    confirmed_by: Option<String>,
    payment_reference: Option<String>,
    dbuuid: Option<String>,
}

impl TryFrom<OrderRow> for Order {
    type Error = DieselError;
    fn try_from(r: OrderRow) -> Result<Self, Self::Error> {
        let status =
            OrderStatus::parse(&r.status).ok_or_else(|| corrupt("order status", &r.status))?;
        Ok(Order {
            id: r.id,
            account_id: r.account_id,
            pack_id: r.pack_id,
            pack_name: r.pack_name,
            credits: credits(r.credits)?,
            price: stored_price(r.price_minor, &r.currency)?,
            status,
            created_at: Timestamp(r.created_at),
            paid_at: r.paid_at.map(Timestamp),
            credited_at: r.credited_at.map(Timestamp),
            cancelled_at: r.cancelled_at.map(Timestamp),
            lot_id: r.lot_id,
            confirmed_by: r.confirmed_by,
            payment_reference: r.payment_reference,
            dbuuid: r.dbuuid,
        })
    }
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> DieselError {
    DieselError::DeserializationError(format!("corrupt {what}: {value}").into())
}

fn stored_price(minor: i64, currency: &str) -> Result<Price, DieselError> {
    Price::from_minor(minor, currency).map_err(|e| corrupt("price", e))
}

fn convert<R, T: TryFrom<R, Error = DieselError>>(rows: Vec<R>) -> Result<Vec<T>, DieselError> {
    rows.into_iter().map(T::try_from).collect()
}

/// Which orders to list.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub account_id: Option<Id>,
    pub status: Option<OrderStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// Consumption and sales of one service for one database over a period.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DatabaseUsage {
    /// `None`: accounts whose database is not known.
    pub dbuuid: Option<String>,
    pub accounts: i64,
    /// Credits captured by the provider.
    pub consumed: Credits,
    pub captures: i64,
    /// Credits sold through credited orders.
    pub sold: Credits,
    pub orders: i64,
    /// Revenue of credited orders, per currency (minor units).
    pub revenue: Vec<Price>,
}

/// Crediting an order inside a transaction that holds its account's lock, written once
/// and compiled for each backend (like the ledger's repository).
trait OrderTx: LedgerRepo {
    fn load_order(&mut self, id: Id) -> Result<Order, PaymentError>;
    fn confirm_locked(
        &mut self,
        order: Order,
        confirmation: &Confirmation,
        now: Timestamp,
    ) -> Result<ConfirmOutcome, PaymentError>;
    fn cancel_locked(&mut self, order: Order, now: Timestamp) -> Result<Order, PaymentError>;
}

macro_rules! impl_order_tx {
    ($conn:ty) => {
        impl OrderTx for $conn {
            fn load_order(&mut self, id: Id) -> Result<Order, PaymentError> {
                orders::table
                    .find(id)
                    .select(OrderRow::as_select())
                    .first::<OrderRow>(self)
                    .optional()?
                    .ok_or_else(|| PaymentError::NotFound(format!("no order {id}")))
                    .and_then(|r| Ok(Order::try_from(r)?))
            }

            fn confirm_locked(
                &mut self,
                order: Order,
                confirmation: &Confirmation,
                now: Timestamp,
            ) -> Result<ConfirmOutcome, PaymentError> {
                match order.status {
                    OrderStatus::Credited => {
                        return Ok(ConfirmOutcome {
                            order,
                            credited_now: false,
                            credit_error: None,
                        });
                    }
                    OrderStatus::Cancelled => {
                        return Err(PaymentError::Conflict(format!(
                            "order {} is cancelled",
                            order.id
                        )));
                    }
                    OrderStatus::Pending => {
                        diesel::update(orders::table.find(order.id))
                            .set((
                                orders::status.eq(OrderStatus::Paid.as_str()),
                                orders::paid_at.eq(now.micros()),
                                orders::confirmed_by.eq(&confirmation.by),
                                orders::payment_reference.eq(confirmation.reference.as_deref()),
                            ))
                            .execute(self)?;
                    }
                    // Paid but not credited by an earlier attempt: credit now.
                    OrderStatus::Paid => {}
                }
                let reference = order.reference();
                let description = format!("Order #{}: {}", order.id, order.pack_name);
                // A savepoint: if the ledger refuses the credit, the order stays recorded
                // as paid and nothing else of the attempt remains.
                let credited = self.transaction(|c| {
                    let outcome = ops::grant(
                        c,
                        &Grant {
                            account_id: order.account_id,
                            amount: order.credits,
                            expires_at: NEVER,
                            origin: EntryKind::Topup,
                            reference: Some(&reference),
                            description: Some(&description),
                        },
                        now,
                    )?;
                    diesel::update(orders::table.find(order.id))
                        .set((
                            orders::status.eq(OrderStatus::Credited.as_str()),
                            orders::lot_id.eq(outcome.lot_id),
                            orders::credited_at.eq(now.micros()),
                        ))
                        .execute(c)?;
                    // A paid purchase is the customer's first authenticated contact: the
                    // account takes the order's database if it still has none, in the
                    // transaction that credits it (never re-bound; which database an order
                    // may carry is `usecase::contact::purchase_database`'s rule).
                    if let Some(db) = order.dbuuid.as_deref() {
                        update_account(
                            accounts::table
                                .find(order.account_id)
                                .filter(accounts::dbuuid.is_null()),
                            accounts::dbuuid.eq(db),
                        )
                        .execute(c)?;
                    }
                    Ok::<_, PaymentError>(())
                });
                let credit_error = match credited {
                    Ok(()) => None,
                    Err(PaymentError::Ledger(e @ LedgerError::Storage(_))) => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(order = order.id, error = %e, "paid order not credited");
                        Some(e.to_string())
                    }
                };
                let order = self.load_order(order.id)?;
                Ok(ConfirmOutcome {
                    credited_now: credit_error.is_none(),
                    order,
                    credit_error,
                })
            }

            fn cancel_locked(&mut self, order: Order, now: Timestamp) -> Result<Order, PaymentError> {
                match order.status {
                    OrderStatus::Cancelled => Ok(order),
                    OrderStatus::Pending => {
                        diesel::update(orders::table.find(order.id))
                            .set((
                                orders::status.eq(OrderStatus::Cancelled.as_str()),
                                orders::cancelled_at.eq(now.micros()),
                            ))
                            .execute(self)?;
                        self.load_order(order.id)
                    }
                    status => Err(PaymentError::Conflict(format!(
                        "order {} is {status}: only pending orders can be cancelled",
                        order.id
                    ))),
                }
            }
        }
    };
}

impl_order_tx!(SqliteConnection);
impl_order_tx!(PgConnection);

fn pack_conflict(e: DieselError, name: &str) -> PaymentError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            PaymentError::Conflict(format!("the service already has a pack named {name:?}"))
        }
        other => other.into(),
    }
}

impl Store {
    /// A random secret shared by every replica: created once, on first use, in the
    /// database (the first writer wins; everyone reads the stored value).
    pub fn portal_secret(&self, name: &str) -> Result<String, LedgerError> {
        let candidate = random_hex(32);
        let now = self.now().micros();
        write_tx!(self, |c| {
            diesel::insert_into(portal_secrets::table)
                .values((
                    portal_secrets::name.eq(name),
                    portal_secrets::value.eq(&candidate),
                    portal_secrets::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            portal_secrets::table
                .find(name)
                .select(portal_secrets::value)
                .first::<String>(c)
        })
        .map_err(LedgerError::from)
    }

    /// Ends the portal session with `nonce` (a logout): its cookie opens nothing any more.
    /// `expires_at` (Unix seconds) is the cookie's own expiry, after which the row is
    /// dropped again; the rows of sessions already expired go at the same time.
    pub fn revoke_portal_session(&self, nonce: &str, expires_at: i64) -> Result<(), LedgerError> {
        let now_secs = self.now().micros() / 1_000_000;
        write_tx!(self, |c| {
            diesel::delete(
                portal_revoked_sessions::table
                    .filter(portal_revoked_sessions::expires_at.le(now_secs)),
            )
            .execute(c)?;
            diesel::insert_into(portal_revoked_sessions::table)
                .values((
                    portal_revoked_sessions::nonce.eq(nonce),
                    portal_revoked_sessions::expires_at.eq(expires_at),
                ))
                .on_conflict_do_nothing()
                .execute(c)
        })
        .map(|_| ())
        .map_err(LedgerError::from)
    }

    /// Whether the portal session with `nonce` logged out.
    pub fn portal_session_revoked(&self, nonce: &str) -> Result<bool, LedgerError> {
        read_one!(self, |c| {
            diesel::select(diesel::dsl::exists(
                portal_revoked_sessions::table.filter(portal_revoked_sessions::nonce.eq(nonce)),
            ))
            .get_result::<bool>(c)
        })
        .map_err(LedgerError::from)
    }

    /// Adds a pack to a service.
    pub fn create_pack(&self, service_id: Id, input: &PackInput) -> Result<Pack, PaymentError> {
        self.create_pack_with(service_id, input, None)
    }

    /// [`Store::create_pack`] by an operator, audited in the same transaction;
    /// `detail` names the new pack.
    pub fn create_pack_audited(
        &self,
        service_id: Id,
        input: &PackInput,
        audit: &AuditRecord,
        detail: fn(&Pack) -> String,
    ) -> Result<Pack, PaymentError> {
        self.create_pack_with(service_id, input, Some((audit, detail)))
    }

    fn create_pack_with(
        &self,
        service_id: Id,
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
        service_id: Id,
        pack_id: Id,
        input: &PackInput,
    ) -> Result<Pack, PaymentError> {
        self.update_pack_with(service_id, pack_id, input, None)
    }

    /// [`Store::update_pack`] by an operator, audited in the same transaction (none
    /// when there is no such pack).
    pub fn update_pack_audited(
        &self,
        service_id: Id,
        pack_id: Id,
        input: &PackInput,
        audit: &AuditRecord,
    ) -> Result<Pack, PaymentError> {
        self.update_pack_with(service_id, pack_id, input, Some(audit))
    }

    fn update_pack_with(
        &self,
        service_id: Id,
        pack_id: Id,
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
    pub fn packs(&self, service_id: Id, active_only: bool) -> Result<Vec<Pack>, PaymentError> {
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

    /// Orders a pack for an account: the pack must be active and of the account's service.
    pub fn create_order(&self, account_id: Id, pack_id: Id) -> Result<Order, PaymentError> {
        self.create_order_from(account_id, pack_id, None)
    }

    /// [`Store::create_order`] placed from a portal session of database `dbuuid`: kept on
    /// the order only while the account has no database, so that crediting the order
    /// binds the account to it. Whether a session's database may be offered is
    /// `usecase::contact::purchase_database`'s rule.
    pub fn create_order_from(
        &self,
        account_id: Id,
        pack_id: Id,
        dbuuid: Option<&str>,
    ) -> Result<Order, PaymentError> {
        let now = self.now().micros();
        let row: OrderRow = write_tx!(self, |c| {
            let account = c
                .lock_account(account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            if account.disabled {
                return Err(LedgerError::Disabled.into());
            }
            let pack: Pack = packs::table
                .find(pack_id)
                .select(PackRow::as_select())
                .first::<PackRow>(c)
                .optional()?
                .filter(|p| p.service_id == account.service_id && p.active)
                .ok_or_else(|| PaymentError::NotFound(format!("no pack {pack_id} on sale here")))?
                .try_into()?;
            let pending: i64 = orders::table
                .filter(orders::account_id.eq(account_id))
                .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                .count()
                .get_result(c)?;
            if pending >= MAX_PENDING_ORDERS {
                return Err(PaymentError::Invalid(format!(
                    "this account already has {pending} unpaid orders: cancel some first"
                )));
            }
            Ok(diesel::insert_into(orders::table)
                .values((
                    orders::account_id.eq(account_id),
                    orders::pack_id.eq(pack.id),
                    orders::pack_name.eq(&pack.name),
                    orders::credits.eq(pack.credits.units()),
                    orders::price_minor.eq(pack.price.minor),
                    orders::currency.eq(&pack.price.currency),
                    orders::status.eq(OrderStatus::Pending.as_str()),
                    orders::created_at.eq(now),
                    orders::dbuuid.eq(dbuuid.filter(|_| account.dbuuid.is_none())),
                ))
                .returning(OrderRow::as_returning())
                .get_result::<OrderRow>(c)?)
        })?;
        Ok(row.try_into()?)
    }

    pub fn order(&self, id: Id) -> Result<Order, PaymentError> {
        read_tx!(self, |c| c.load_order(id))
    }

    /// Orders, newest first.
    pub fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, PaymentError> {
        let rows: Vec<OrderRow> = read_tx!(self, |c| {
            let mut query = orders::table
                .order(orders::id.desc())
                .limit(filter.limit)
                .offset(filter.offset)
                .select(OrderRow::as_select())
                .into_boxed();
            if let Some(id) = filter.account_id {
                query = query.filter(orders::account_id.eq(id));
            }
            if let Some(status) = filter.status {
                query = query.filter(orders::status.eq(status.as_str()));
            }
            query.load::<OrderRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Records a confirmed payment and credits the order, all under the account's lock
    /// in one transaction; an order already credited is left as it is.
    pub fn confirm_order(
        &self,
        id: Id,
        confirmation: &Confirmation,
    ) -> Result<ConfirmOutcome, PaymentError> {
        self.confirm_order_with(id, confirmation, None)
    }

    /// [`Store::confirm_order`] with the operator's audit line, written in the same
    /// transaction; `detail` says what the confirmation did.
    pub fn confirm_order_audited(
        &self,
        id: Id,
        confirmation: &Confirmation,
        audit: &AuditRecord,
        detail: fn(&ConfirmOutcome) -> String,
    ) -> Result<ConfirmOutcome, PaymentError> {
        self.confirm_order_with(id, confirmation, Some((audit, detail)))
    }

    fn confirm_order_with(
        &self,
        id: Id,
        confirmation: &Confirmation,
        audit: Option<AuditWith<'_, ConfirmOutcome>>,
    ) -> Result<ConfirmOutcome, PaymentError> {
        let now = self.now();
        let result = write_tx!(self, |c| {
            let order = c.load_order(id)?;
            let account = c
                .lock_account(order.account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            // Re-read under the lock: a concurrent confirmation may have credited it.
            let order = c.load_order(id)?;
            let outcome = c.confirm_locked(order, confirmation, now)?;
            if let Some((audit, detail)) = audit {
                write_audit_record(c, now.micros(), &audit.with_detail(detail(&outcome)))?;
            }
            Ok::<_, PaymentError>((outcome, account))
        })
        .map(|(outcome, account)| {
            self.forget_if_bound(&account, &outcome.order, outcome.credited_now);
            outcome
        });
        record("confirm_order", &result);
        result
    }

    /// Cancels a pending order (`account_id`: only if it is that account's).
    pub fn cancel_order(&self, id: Id, account_id: Option<Id>) -> Result<Order, PaymentError> {
        self.cancel_order_with(id, account_id, None)
    }

    /// [`Store::cancel_order`] by an operator, audited in the same transaction.
    pub fn cancel_order_audited(&self, id: Id, audit: &AuditRecord) -> Result<Order, PaymentError> {
        self.cancel_order_with(id, None, Some(audit))
    }

    fn cancel_order_with(
        &self,
        id: Id,
        account_id: Option<Id>,
        audit: Option<&AuditRecord>,
    ) -> Result<Order, PaymentError> {
        let now = self.now();
        write_tx!(self, |c| {
            let order = c.load_order(id)?;
            if account_id.is_some_and(|a| a != order.account_id) {
                return Err(PaymentError::NotFound(format!("no order {id}")));
            }
            c.lock_account(order.account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            let order = c.load_order(id)?;
            let order = c.cancel_locked(order, now)?;
            if let Some(audit) = audit {
                write_audit_record(c, now.micros(), audit)?;
            }
            Ok::<_, PaymentError>(order)
        })
    }

    /// Applies a verified payment event once: the event row, the payment and the credit
    /// are one transaction, so a replay finds the event and changes nothing.
    pub fn apply_payment_event(
        &self,
        event: &Event,
        body_hash: &str,
    ) -> Result<EventOutcome, PaymentError> {
        let now = self.now();
        let result = write_tx!(self, |c| {
            let order = c.load_order(event.order_id)?;
            let account = c
                .lock_account(order.account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            let order = c.load_order(event.order_id)?;
            let seen: Option<String> = payment_events::table
                .find(&event.id)
                .select(payment_events::body_hash)
                .first::<String>(c)
                .optional()?;
            if let Some(hash) = seen {
                if hash != body_hash {
                    return Err(PaymentError::Conflict(format!(
                        "event {:?} was already received with another body",
                        event.id
                    )));
                }
                return Ok((
                    EventOutcome {
                        order,
                        duplicate: true,
                        credited_now: false,
                    },
                    account,
                ));
            }
            if event.kind == EventKind::Succeeded
                && (event.amount_minor != order.price.minor
                    || event.currency != order.price.currency)
            {
                return Err(PaymentError::Invalid(format!(
                    "order {} costs {}, the event says {} {}",
                    order.id, order.price, event.amount_minor, event.currency
                )));
            }
            let inserted = diesel::insert_into(payment_events::table)
                .values((
                    payment_events::event_id.eq(&event.id),
                    payment_events::body_hash.eq(body_hash),
                    payment_events::kind.eq(event.kind.as_str()),
                    payment_events::order_id.eq(order.id),
                    payment_events::received_at.eq(now.micros()),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            if inserted == 0 {
                // Another delivery of this event (for another order's account) won.
                return Ok((
                    EventOutcome {
                        order,
                        duplicate: true,
                        credited_now: false,
                    },
                    account,
                ));
            }
            let outcome = match event.kind {
                EventKind::Succeeded => {
                    let outcome = c.confirm_locked(
                        order,
                        &Confirmation {
                            by: "webhook".into(),
                            reference: event.reference.clone(),
                        },
                        now,
                    )?;
                    EventOutcome {
                        order: outcome.order,
                        duplicate: false,
                        credited_now: outcome.credited_now,
                    }
                }
                EventKind::Failed => {
                    // A failure after a success (or a retry of it) leaves the credit alone.
                    let order = if order.status == OrderStatus::Pending {
                        c.cancel_locked(order, now)?
                    } else {
                        order
                    };
                    EventOutcome {
                        order,
                        duplicate: false,
                        credited_now: false,
                    }
                }
            };
            Ok((outcome, account))
        })
        .map(|(outcome, account)| {
            self.forget_if_bound(&account, &outcome.order, outcome.credited_now);
            outcome
        });
        record("payment_event", &result);
        result
    }

    /// After crediting `order`: if that bound `account` (locked as it was before) to the
    /// order's database, the provider calls' remembered copy of it is stale.
    fn forget_if_bound(&self, account: &Account, order: &Order, credited_now: bool) {
        if credited_now && account.dbuuid.is_none() && order.dbuuid.is_some() {
            self.lookups
                .forget_account(account.service_id, &account.token_hash);
        }
    }

    /// Accounts and their services, for the ids a portal session may see.
    pub fn accounts_with_services(
        &self,
        ids: &[Id],
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

    /// Credits captured per UTC day (days since the epoch) from `since` on, oldest first.
    pub fn daily_consumption(
        &self,
        account_id: Id,
        since: Timestamp,
    ) -> Result<Vec<(i64, Credits)>, LedgerError> {
        let day = format!("journal.effective_at / {MICROS_PER_DAY}");
        let rows: Vec<(i64, i64)> = read_tx!(self, |c| {
            journal::table
                .filter(journal::account_id.eq(account_id))
                .filter(journal::kind.eq(EntryKind::Capture.as_str()))
                .filter(journal::effective_at.ge(since.micros()))
                .group_by(sql::<BigInt>(&day))
                .select((
                    sql::<BigInt>(&day),
                    sql::<BigInt>("CAST(SUM(-journal.amount) AS BIGINT)"),
                ))
                .order(sql::<BigInt>(&day))
                .load::<(i64, i64)>(c)
        })?;
        rows.into_iter()
            .map(|(d, units)| Ok((d, credits(units)?)))
            .collect()
    }

    /// Per database of a service: accounts, credits consumed since `since`, and credited
    /// orders since `since` with their revenue per currency.
    pub fn service_usage(
        &self,
        service_id: Id,
        since: Timestamp,
    ) -> Result<Vec<DatabaseUsage>, LedgerError> {
        type PerDb = Vec<(Option<String>, i64)>;
        type Consumed = Vec<(Option<String>, i64, i64)>;
        type Sold = Vec<(Option<String>, String, i64, i64, i64)>;
        let (accounts_per_db, consumed, sold): (PerDb, Consumed, Sold) = read_tx!(self, |c| {
            let accounts_per_db = accounts::table
                .filter(accounts::service_id.eq(service_id))
                .group_by(accounts::dbuuid)
                .select((accounts::dbuuid, sql::<BigInt>("COUNT(*)")))
                .load::<(Option<String>, i64)>(c)?;
            let consumed = journal::table
                .inner_join(accounts::table)
                .filter(accounts::service_id.eq(service_id))
                .filter(journal::kind.eq(EntryKind::Capture.as_str()))
                .filter(journal::effective_at.ge(since.micros()))
                .group_by(accounts::dbuuid)
                .select((
                    accounts::dbuuid,
                    sql::<BigInt>("CAST(SUM(-journal.amount) AS BIGINT)"),
                    sql::<BigInt>("COUNT(*)"),
                ))
                .load(c)?;
            let sold = orders::table
                .inner_join(accounts::table)
                .filter(accounts::service_id.eq(service_id))
                .filter(orders::status.eq(OrderStatus::Credited.as_str()))
                .filter(orders::credited_at.ge(since.micros()))
                .group_by((accounts::dbuuid, orders::currency))
                .select((
                    accounts::dbuuid,
                    orders::currency,
                    sql::<BigInt>("CAST(SUM(orders.credits) AS BIGINT)"),
                    sql::<BigInt>("CAST(SUM(orders.price_minor) AS BIGINT)"),
                    sql::<BigInt>("COUNT(*)"),
                ))
                .load(c)?;
            Ok::<_, LedgerError>((accounts_per_db, consumed, sold))
        })?;
        let mut out: Vec<DatabaseUsage> = accounts_per_db
            .into_iter()
            .map(|(dbuuid, accounts)| DatabaseUsage {
                dbuuid,
                accounts,
                ..DatabaseUsage::default()
            })
            .collect();
        let entry = |out: &mut Vec<DatabaseUsage>, db: &Option<String>| -> usize {
            match out.iter().position(|u| &u.dbuuid == db) {
                Some(i) => i,
                None => {
                    out.push(DatabaseUsage {
                        dbuuid: db.clone(),
                        ..DatabaseUsage::default()
                    });
                    out.len() - 1
                }
            }
        };
        for (db, units, n) in consumed {
            let i = entry(&mut out, &db);
            out[i].consumed = credits(units)?;
            out[i].captures = n;
        }
        for (db, currency, units, minor, n) in sold {
            let i = entry(&mut out, &db);
            let usage = &mut out[i];
            usage.sold = usage.sold.checked_add(credits(units)?)?;
            usage.orders += n;
            usage.revenue.push(stored_price(minor, &currency)?);
        }
        out.sort_by(|a, b| b.consumed.cmp(&a.consumed).then(a.dbuuid.cmp(&b.dbuuid)));
        Ok(out)
    }

    /// The service with this id.
    pub fn service(&self, id: Id) -> Result<Service, LedgerError> {
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
        service_id: Id,
        trial_credits: Credits,
        trial_days: i32,
    ) -> Result<Service, LedgerError> {
        self.set_service_trial_with(service_id, trial_credits, trial_days, None)
    }

    /// [`Store::set_service_trial`] by an operator, audited in the same transaction.
    pub fn set_service_trial_audited(
        &self,
        service_id: Id,
        trial_credits: Credits,
        trial_days: i32,
        audit: &AuditRecord,
    ) -> Result<Service, LedgerError> {
        self.set_service_trial_with(service_id, trial_credits, trial_days, Some(audit))
    }

    fn set_service_trial_with(
        &self,
        service_id: Id,
        trial_credits: Credits,
        trial_days: i32,
        audit: Option<&AuditRecord>,
    ) -> Result<Service, LedgerError> {
        let now = self.now().micros();
        if !(0..=3650).contains(&trial_days) {
            return Err(LedgerError::Invalid(
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
            .ok_or_else(|| LedgerError::UnknownService(format!("#{service_id}")))
    }
}

/// Counts payment outcomes with the ledger's operation metrics.
fn record<T>(operation: &str, result: &Result<T, PaymentError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    METRICS
        .ledger_operations
        .with_label_values(&[operation, outcome])
        .inc();
}
