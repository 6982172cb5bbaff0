//! Buying credits: an order for a pack, placed from the portal. Paying it (the payment
//! provider's webhook, or an operator's confirmation) credits the account; crediting is
//! the store's `apply_payment_event` / `confirm_order`, one transaction under the
//! account's lock.

use super::contact::{self, ContactError, Rules};
use crate::ledger::{Account, Service};
use crate::payments::{Order, PackId, PaymentError};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// Places an order for pack `pack_id` on `account` (whose access the caller checked),
/// from a portal session of database `session_dbuuid`. Paid, the order binds an account
/// without a database to the session's, when [`contact::purchase_database`] allows it.
pub fn place_order(
    store: &Store,
    rules: &Rules,
    service: &Service,
    account: &Account,
    pack_id: PackId,
    session_dbuuid: Option<&str>,
) -> Result<Order, PurchaseError> {
    let db = contact::purchase_database(store, rules, service, account, session_dbuuid)?;
    Ok(store.create_order_from(account.id, pack_id, db.as_deref())?)
}
