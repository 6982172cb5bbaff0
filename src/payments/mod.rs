//! Credit packs, orders and their payment: what a customer buys on the portal, and how a
//! confirmed payment becomes credits.
//!
//! An order is `pending` until its payment is confirmed (by the operator, the admin API
//! or a signed payment webhook); it is then `paid` and, in the same transaction, credited:
//! a top-up lot referenced `order:<id>` and its journal entry are written and the order
//! becomes `credited`. Confirming again finds it credited and changes nothing. A pending
//! order may be `cancelled`.

pub mod money;
pub mod orders;
pub mod repo;
pub mod webhook;

pub use money::{Price, PriceError};

use crate::ledger::{AccountId, Credits, LotId, ServiceId, Timestamp, entity_id};

entity_id! {
    /// A pack: credits sold together at one price.
    pub PackId
}

entity_id! {
    /// An order of a pack by an account.
    pub OrderId
}

/// Credits sold together at one price, for one service.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pack {
    pub id: PackId,
    pub service_id: ServiceId,
    pub name: String,
    pub credits: Credits,
    pub price: Price,
    /// Inactive packs are no longer offered; existing orders keep them.
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A pack to create or the new values of one.
#[derive(Clone, Debug)]
pub struct PackInput {
    pub name: String,
    pub credits: Credits,
    pub price: Price,
    pub active: bool,
}

impl PackInput {
    /// Names are shown to customers: 1-80 characters, no control characters.
    pub fn validate(&self) -> Result<(), PaymentError> {
        if !crate::ledger::text::visible_text(&self.name, 80) {
            return Err(PaymentError::Invalid(
                "pack name must be 1-80 characters, not only spaces, no control characters".into(),
            ));
        }
        if self.credits.is_zero() {
            return Err(PaymentError::Invalid(
                "a pack must hold more than 0 credits".into(),
            ));
        }
        Ok(())
    }
}

crate::ledger::text_enum! {
    /// Where an order stands.
    #[derive(utoipa::ToSchema)]
    OrderStatus { Pending => "pending", Paid => "paid", Credited => "credited", Cancelled => "cancelled" }
}

/// A customer's purchase of one pack for one account.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Order {
    pub id: OrderId,
    pub account_id: AccountId,
    pub pack_id: PackId,
    /// The pack as it was when ordered.
    pub pack_name: String,
    pub credits: Credits,
    pub price: Price,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub credited_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    /// The lot holding the credits, once credited.
    pub lot_id: Option<LotId>,
    pub confirmed_by: Option<String>,
    pub payment_reference: Option<String>,
    /// The database crediting this order binds its account to, if the account still has
    /// none then: the portal session's, kept when the order was placed for an account
    /// without a database (`usecase::contact::purchase_database`).
    pub dbuuid: Option<String>,
}

impl Order {
    /// What the lot and the payment provider know the order by.
    pub fn reference(&self) -> String {
        format!("order:{}", self.id)
    }
}

/// Who confirmed a payment, kept on the order.
#[derive(Clone, Debug)]
pub struct Confirmation {
    /// `operator` (CLI), `admin:<token name>` or `webhook`.
    pub by: String,
    /// The payment's own reference (a provider's payment id), if any.
    pub reference: Option<String>,
}

/// What confirming a payment did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConfirmOutcome {
    pub order: Order,
    /// True when this call credited the order; false when it already was.
    pub credited_now: bool,
    /// Why a paid order could not be credited (it stays `paid`; confirming again retries).
    pub credit_error: Option<String>,
}

/// Why a pack, order or payment operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// No such pack, order or service (or not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// The order is not in a state that allows this (e.g. confirming a cancelled order).
    #[error("{0}")]
    Conflict(String),
    /// Bad input: a price, a pack, an event that does not match its order.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl PaymentError {
    /// A stable machine-readable name, used in problem types and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::NotFound(_) => "not_found",
            PaymentError::Conflict(_) => "conflict",
            PaymentError::Invalid(_) => "invalid_input",
            PaymentError::Ledger(e) => e.code(),
        }
    }
}

impl From<PriceError> for PaymentError {
    fn from(e: PriceError) -> Self {
        PaymentError::Invalid(e.to_string())
    }
}

/// What a payment event did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EventOutcome {
    pub order: Order,
    /// The same event (same id, same body) was already applied: nothing changed.
    pub duplicate: bool,
    /// This event credited the order.
    pub credited_now: bool,
}
