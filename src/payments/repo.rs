//! What the order rules need from storage, implemented by `store` for each backend.
//!
//! Every method runs inside the caller's transaction, after the account of the order was
//! locked ([`crate::ledger::repo::HoldRepo::lock_account`]), so that the rules in
//! [`super::orders`] see and change one order at a time.

use super::{Order, OrderId, Pack, PackId, PaymentError};
use crate::ledger::repo::LedgerRepo;
use crate::ledger::{AccountId, LotId, Timestamp};

/// An order about to be stored.
pub struct NewOrder<'a> {
    pub account_id: AccountId,
    pub pack: &'a Pack,
    pub created_at: Timestamp,
    /// The database crediting the order binds the account to (see `Order::dbuuid`).
    pub dbuuid: Option<&'a str>,
}

/// A payment event about to be recorded.
pub struct NewEvent<'a> {
    pub event_id: &'a str,
    pub body_hash: &'a str,
    pub kind: &'a str,
    pub order_id: OrderId,
    pub received_at: Timestamp,
}

pub trait OrderRepo: LedgerRepo + Sized {
    /// The order, or `PaymentError::NotFound`.
    fn load_order(&mut self, id: OrderId) -> Result<Order, PaymentError>;
    /// The pack, whatever its state.
    fn find_pack(&mut self, id: PackId) -> Result<Option<Pack>, PaymentError>;
    /// How many orders of `account_id` are pending.
    fn pending_orders(&mut self, account_id: AccountId) -> Result<i64, PaymentError>;
    fn insert_order(&mut self, order: NewOrder<'_>) -> Result<Order, PaymentError>;
    fn set_paid(
        &mut self,
        id: OrderId,
        at: Timestamp,
        by: &str,
        reference: Option<&str>,
    ) -> Result<(), PaymentError>;
    fn set_credited(
        &mut self,
        id: OrderId,
        lot_id: LotId,
        at: Timestamp,
    ) -> Result<(), PaymentError>;
    fn set_cancelled(&mut self, id: OrderId, at: Timestamp) -> Result<(), PaymentError>;
    /// Binds the account to `dbuuid` if it has no database yet (never re-binds).
    fn bind_database(&mut self, account_id: AccountId, dbuuid: &str) -> Result<(), PaymentError>;
    /// The body hash an event id was first received with, if it was.
    fn event_body_hash(&mut self, event_id: &str) -> Result<Option<String>, PaymentError>;
    /// Records an event; `false` when its id was recorded meanwhile (nothing written).
    fn insert_event(&mut self, event: NewEvent<'_>) -> Result<bool, PaymentError>;
    /// Runs `f` in a savepoint: undone, and only it, when it fails.
    fn savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, PaymentError>,
    ) -> Result<T, PaymentError>;
}
