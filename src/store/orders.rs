//! Orders and payment events: placed, confirmed, cancelled, credited.

use super::accounts::update_account;
use super::audit::{AuditRecord, AuditWith, write_audit_record};
use super::packs::PackRow;
use super::rows::{convert, corrupt, credits};
use super::schema::{accounts, orders, packs, payment_events};
use super::{Store, read_tx, write_tx};
use crate::ledger::repo::HoldRepo;
use crate::ledger::{Account, AccountId, LedgerError, LotId, Timestamp};
use crate::payments::orders as rules;
use crate::payments::repo::{NewEvent, NewOrder, OrderRepo};
use crate::payments::webhook::Event;
use crate::payments::{
    ConfirmOutcome, Confirmation, EventOutcome, Order, OrderId, OrderStatus, Pack, PackId,
    PaymentError, Price,
};
use crate::telemetry::METRICS;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sqlite::SqliteConnection;

// Revenue is grouped by database and currency.
diesel::allow_columns_to_appear_in_same_group_by_clause!(accounts::dbuuid, orders::currency);

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
pub(super) struct OrderRow {
    pub(super) id: OrderId,
    pub(super) account_id: AccountId,
    pub(super) pack_id: PackId,
    pub(super) pack_name: String,
    pub(super) credits: i64,
    pub(super) price_minor: i64,
    pub(super) currency: String,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) paid_at: Option<i64>,
    pub(super) credited_at: Option<i64>,
    pub(super) cancelled_at: Option<i64>,
    pub(super) lot_id: Option<LotId>,
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
            created_at: Timestamp::from_micros(r.created_at),
            paid_at: r.paid_at.map(Timestamp::from_micros),
            credited_at: r.credited_at.map(Timestamp::from_micros),
            cancelled_at: r.cancelled_at.map(Timestamp::from_micros),
            lot_id: r.lot_id,
            confirmed_by: r.confirmed_by,
            payment_reference: r.payment_reference,
            dbuuid: r.dbuuid,
        })
    }
}

pub(super) fn stored_price(minor: i64, currency: &str) -> Result<Price, DieselError> {
    Price::from_minor(minor, currency).map_err(|e| corrupt("price", e))
}

/// Which orders to list.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub account_id: Option<AccountId>,
    pub status: Option<OrderStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// [`OrderRepo`] for both backends: one body of diesel DSL, compiled once per connection
/// type (like the ledger's repository).
macro_rules! impl_order_repo {
    ($conn:ty) => {
        impl OrderRepo for $conn {
            fn load_order(&mut self, id: OrderId) -> Result<Order, PaymentError> {
                orders::table
                    .find(id)
                    .select(OrderRow::as_select())
                    .first::<OrderRow>(self)
                    .optional()?
                    .ok_or_else(|| PaymentError::NotFound(format!("no order {id}")))
                    .and_then(|r| Ok(Order::try_from(r)?))
            }

            fn find_pack(&mut self, id: PackId) -> Result<Option<Pack>, PaymentError> {
                Ok(packs::table
                    .find(id)
                    .select(PackRow::as_select())
                    .first::<PackRow>(self)
                    .optional()?
                    .map(Pack::try_from)
                    .transpose()?)
            }

            fn pending_orders(&mut self, account_id: AccountId) -> Result<i64, PaymentError> {
                Ok(orders::table
                    .filter(orders::account_id.eq(account_id))
                    .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                    .count()
                    .get_result(self)?)
            }

            fn insert_order(&mut self, order: NewOrder<'_>) -> Result<Order, PaymentError> {
                let pack = order.pack;
                Ok(diesel::insert_into(orders::table)
                    .values((
                        orders::account_id.eq(order.account_id),
                        orders::pack_id.eq(pack.id),
                        orders::pack_name.eq(&pack.name),
                        orders::credits.eq(pack.credits.units()),
                        orders::price_minor.eq(pack.price.minor),
                        orders::currency.eq(&pack.price.currency),
                        orders::status.eq(OrderStatus::Pending.as_str()),
                        orders::created_at.eq(order.created_at.micros()),
                        orders::dbuuid.eq(order.dbuuid),
                    ))
                    .returning(OrderRow::as_returning())
                    .get_result::<OrderRow>(self)?
                    .try_into()?)
            }

            fn set_paid(
                &mut self,
                id: OrderId,
                at: Timestamp,
                by: &str,
                reference: Option<&str>,
            ) -> Result<(), PaymentError> {
                diesel::update(orders::table.find(id))
                    .set((
                        orders::status.eq(OrderStatus::Paid.as_str()),
                        orders::paid_at.eq(at.micros()),
                        orders::confirmed_by.eq(by),
                        orders::payment_reference.eq(reference),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn set_credited(
                &mut self,
                id: OrderId,
                lot_id: LotId,
                at: Timestamp,
            ) -> Result<(), PaymentError> {
                diesel::update(orders::table.find(id))
                    .set((
                        orders::status.eq(OrderStatus::Credited.as_str()),
                        orders::lot_id.eq(lot_id),
                        orders::credited_at.eq(at.micros()),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn set_cancelled(&mut self, id: OrderId, at: Timestamp) -> Result<(), PaymentError> {
                diesel::update(orders::table.find(id))
                    .set((
                        orders::status.eq(OrderStatus::Cancelled.as_str()),
                        orders::cancelled_at.eq(at.micros()),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn bind_database(
                &mut self,
                account_id: AccountId,
                dbuuid: &str,
            ) -> Result<(), PaymentError> {
                update_account(
                    accounts::table
                        .find(account_id)
                        .filter(accounts::dbuuid.is_null()),
                    accounts::dbuuid.eq(dbuuid),
                )
                .execute(self)?;
                Ok(())
            }

            fn event_body_hash(&mut self, event_id: &str) -> Result<Option<String>, PaymentError> {
                Ok(payment_events::table
                    .find(event_id)
                    .select(payment_events::body_hash)
                    .first::<String>(self)
                    .optional()?)
            }

            fn insert_event(&mut self, event: NewEvent<'_>) -> Result<bool, PaymentError> {
                let inserted = diesel::insert_into(payment_events::table)
                    .values((
                        payment_events::event_id.eq(event.event_id),
                        payment_events::body_hash.eq(event.body_hash),
                        payment_events::kind.eq(event.kind),
                        payment_events::order_id.eq(event.order_id),
                        payment_events::received_at.eq(event.received_at.micros()),
                    ))
                    .on_conflict_do_nothing()
                    .execute(self)?;
                Ok(inserted > 0)
            }

            fn savepoint<T>(
                &mut self,
                f: impl FnOnce(&mut Self) -> Result<T, PaymentError>,
            ) -> Result<T, PaymentError> {
                self.transaction(f)
            }
        }
    };
}

impl_order_repo!(SqliteConnection);

impl_order_repo!(PgConnection);

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
    pub fn create_order(
        &self,
        account_id: AccountId,
        pack_id: PackId,
    ) -> Result<Order, PaymentError> {
        self.create_order_from(account_id, pack_id, None)
    }

    /// [`Store::create_order`] placed from a portal session of database `dbuuid`: kept on
    /// the order only while the account has no database, so that crediting the order
    /// binds the account to it. Whether a session's database may be offered is
    /// `usecase::contact::purchase_database`'s rule.
    pub fn create_order_from(
        &self,
        account_id: AccountId,
        pack_id: PackId,
        dbuuid: Option<&str>,
    ) -> Result<Order, PaymentError> {
        let now = self.now();
        write_tx!(self, |c| {
            let account = c
                .lock_account(account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            rules::place(c, &account, pack_id, dbuuid, now)
        })
    }

    pub fn order(&self, id: OrderId) -> Result<Order, PaymentError> {
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
        id: OrderId,
        confirmation: &Confirmation,
    ) -> Result<ConfirmOutcome, PaymentError> {
        self.confirm_order_with(id, confirmation, None)
    }

    /// [`Store::confirm_order`] with the operator's audit line, written in the same
    /// transaction; `detail` says what the confirmation did.
    pub fn confirm_order_audited(
        &self,
        id: OrderId,
        confirmation: &Confirmation,
        audit: &AuditRecord,
        detail: fn(&ConfirmOutcome) -> String,
    ) -> Result<ConfirmOutcome, PaymentError> {
        self.confirm_order_with(id, confirmation, Some((audit, detail)))
    }

    fn confirm_order_with(
        &self,
        id: OrderId,
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
            let outcome = rules::confirm(c, order, confirmation, now)?;
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
    pub fn cancel_order(
        &self,
        id: OrderId,
        account_id: Option<AccountId>,
    ) -> Result<Order, PaymentError> {
        self.cancel_order_with(id, account_id, None)
    }

    /// [`Store::cancel_order`] by an operator, audited in the same transaction.
    pub fn cancel_order_audited(
        &self,
        id: OrderId,
        audit: &AuditRecord,
    ) -> Result<Order, PaymentError> {
        self.cancel_order_with(id, None, Some(audit))
    }

    fn cancel_order_with(
        &self,
        id: OrderId,
        account_id: Option<AccountId>,
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
            let order = rules::cancel(c, order, now)?;
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
            let outcome = rules::apply_event(c, order, event, body_hash, now)?;
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
