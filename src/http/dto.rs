//! API shapes two faces answer alike: an order, as the admin API lists it and as the
//! payment webhook reports what it did with one.

use serde::Serialize;
use utoipa::ToSchema;

use crate::ledger::{AccountId, Credits, LotId};
use crate::payments::{Order, OrderId, OrderStatus, PackId};

/// An order.
#[derive(Serialize, ToSchema)]
pub struct OrderDto {
    #[schema(value_type = i64)]
    pub id: OrderId,
    #[schema(value_type = i64)]
    pub account_id: AccountId,
    #[schema(value_type = i64)]
    pub pack_id: PackId,
    pub pack_name: String,
    #[schema(value_type = String, example = "100")]
    pub credits: Credits,
    /// Minor units of `currency` (cents).
    pub price_minor: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub credited_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// The lot holding the credits (`reference` = `order:<id>`), once credited.
    #[schema(value_type = Option<i64>)]
    pub lot_id: Option<LotId>,
    pub confirmed_by: Option<String>,
    pub payment_reference: Option<String>,
    /// The database of the portal session the order was placed from, kept while the
    /// account had none: crediting the order binds the account to it.
    pub dbuuid: Option<String>,
}

impl From<Order> for OrderDto {
    fn from(o: Order) -> Self {
        OrderDto {
            id: o.id,
            account_id: o.account_id,
            pack_id: o.pack_id,
            pack_name: o.pack_name,
            credits: o.credits,
            price_minor: o.price.minor,
            currency: o.price.currency,
            status: o.status,
            created_at: o.created_at.to_string(),
            paid_at: o.paid_at.map(|t| t.to_string()),
            credited_at: o.credited_at.map(|t| t.to_string()),
            cancelled_at: o.cancelled_at.map(|t| t.to_string()),
            lot_id: o.lot_id,
            confirmed_by: o.confirmed_by,
            payment_reference: o.payment_reference,
            dbuuid: o.dbuuid,
        }
    }
}
