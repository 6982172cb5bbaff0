//! Orders and payment events: placed, confirmed, cancelled, credited.

use super::accounts::update_account;
use super::audit::{AuditRecord, AuditWith, write_audit_record};
use super::packs::PackRow;
use super::rows::credits;
use super::schema::{accounts, orders, packs, payment_events};
use super::{Store, read_tx, write_tx};
use crate::ledger::ops::Grant;
use crate::ledger::repo::{HoldRepo, LedgerRepo};
use crate::ledger::time::NEVER;
use crate::ledger::{Account, EntryKind, Id, LedgerError, Timestamp, ops};
use crate::payments::webhook::{Event, EventKind};
use crate::payments::{
    ConfirmOutcome, Confirmation, EventOutcome, Order, OrderStatus, Pack, PaymentError, Price,
};
use crate::telemetry::METRICS;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sqlite::SqliteConnection;

// Revenue is grouped by database and currency.
diesel::allow_columns_to_appear_in_same_group_by_clause!(accounts::dbuuid, orders::currency);

/// A customer may leave this many orders unpaid on one account; more are refused.
pub const MAX_PENDING_ORDERS: i64 = 20;

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
pub(super) struct OrderRow {
    pub(super) id: i64,
    pub(super) account_id: i64,
    pub(super) pack_id: i64,
    pub(super) pack_name: String,
    pub(super) credits: i64,
    pub(super) price_minor: i64,
    pub(super) currency: String,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) paid_at: Option<i64>,
    pub(super) credited_at: Option<i64>,
    pub(super) cancelled_at: Option<i64>,
    pub(super) lot_id: Option<i64>,
    pub(super) confirmed_by: Option<String>,
    pub(super) payment_reference: Option<String>,
    pub(super) dbuuid: Option<String>,
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

pub(super) fn corrupt(what: &str, value: impl std::fmt::Display) -> DieselError {
    DieselError::DeserializationError(format!("corrupt {what}: {value}").into())
}

pub(super) fn stored_price(minor: i64, currency: &str) -> Result<Price, DieselError> {
    Price::from_minor(minor, currency).map_err(|e| corrupt("price", e))
}

pub(super) fn convert<R, T: TryFrom<R, Error = DieselError>>(
    rows: Vec<R>,
) -> Result<Vec<T>, DieselError> {
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

/// Crediting an order inside a transaction that holds its account's lock, written once
/// and compiled for each backend (like the ledger's repository).
pub(super) trait OrderTx: LedgerRepo {
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

/// Counts payment outcomes with the ledger's operation metrics.
pub(super) fn record<T>(operation: &str, result: &Result<T, PaymentError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    METRICS
        .ledger_operations
        .with_label_values(&[operation, outcome])
        .inc();
}

impl Store {
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
}
