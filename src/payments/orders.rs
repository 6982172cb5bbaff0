//! The rules of an order's life: placed (pending) → paid → credited, or cancelled while
//! pending; payment events applied once. Written against [`OrderRepo`], inside the
//! caller's transaction, with the order's account locked.

use super::repo::{NewEvent, NewOrder, OrderRepo};
use super::webhook::{Event, EventKind};
use super::{ConfirmOutcome, Confirmation, EventOutcome, Order, OrderStatus, PackId, PaymentError};
use crate::ledger::ops::{self, Grant};
use crate::ledger::time::NEVER;
use crate::ledger::{Account, EntryKind, LedgerError, Timestamp};

/// A customer may leave this many orders unpaid on one account; more are refused.
pub const MAX_PENDING_ORDERS: i64 = 20;

/// Places an order for `pack_id` on the locked `account`: the pack must be on sale for
/// the account's service, the account enabled and below [`MAX_PENDING_ORDERS`]. `dbuuid`
/// is kept only while the account has no database (crediting binds it there).
pub fn place<R: OrderRepo>(
    repo: &mut R,
    account: &Account,
    pack_id: PackId,
    dbuuid: Option<&str>,
    now: Timestamp,
) -> Result<Order, PaymentError> {
    if account.disabled {
        return Err(LedgerError::Disabled.into());
    }
    let pack = repo
        .find_pack(pack_id)?
        .filter(|p| p.service_id == account.service_id && p.active)
        .ok_or_else(|| PaymentError::NotFound(format!("no pack {pack_id} on sale here")))?;
    let pending = repo.pending_orders(account.id)?;
    if pending >= MAX_PENDING_ORDERS {
        return Err(PaymentError::Invalid(format!(
            "this account already has {pending} unpaid orders: cancel some first"
        )));
    }
    repo.insert_order(NewOrder {
        account_id: account.id,
        pack: &pack,
        created_at: now,
        dbuuid: dbuuid.filter(|_| account.dbuuid.is_none()),
    })
}

/// Records a payment and credits the order: a credited order stays as it is, a
/// cancelled one is refused, a paid one not credited yet is credited now. When the
/// ledger refuses the credit, the order stays paid and the refusal is reported.
pub fn confirm<R: OrderRepo>(
    repo: &mut R,
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
            repo.set_paid(
                order.id,
                now,
                &confirmation.by,
                confirmation.reference.as_deref(),
            )?;
        }
        // Paid but not credited by an earlier attempt: credit now.
        OrderStatus::Paid => {}
    }
    let reference = order.reference();
    let description = format!("Order #{}: {}", order.id, order.pack_name);
    // A savepoint: if the ledger refuses the credit, the order stays recorded as paid and
    // nothing else of the attempt remains.
    let credited = repo.savepoint(|c| {
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
        c.set_credited(order.id, outcome.lot_id, now)?;
        // A paid purchase is the customer's first authenticated contact: the account
        // takes the order's database if it still has none, in the transaction that
        // credits it (never re-bound; which database an order may carry is
        // `usecase::contact::purchase_database`'s rule).
        if let Some(db) = order.dbuuid.as_deref() {
            c.bind_database(order.account_id, db)?;
        }
        Ok(())
    });
    let credit_error = match credited {
        Ok(()) => None,
        Err(PaymentError::Ledger(e @ LedgerError::Storage(_))) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(order = %order.id, error = %e, "paid order not credited");
            Some(e.to_string())
        }
    };
    let order = repo.load_order(order.id)?;
    Ok(ConfirmOutcome {
        credited_now: credit_error.is_none(),
        order,
        credit_error,
    })
}

/// Cancels a pending order; a cancelled one stays so; any other is refused.
pub fn cancel<R: OrderRepo>(
    repo: &mut R,
    order: Order,
    now: Timestamp,
) -> Result<Order, PaymentError> {
    match order.status {
        OrderStatus::Cancelled => Ok(order),
        OrderStatus::Pending => {
            repo.set_cancelled(order.id, now)?;
            repo.load_order(order.id)
        }
        status => Err(PaymentError::Conflict(format!(
            "order {} is {status}: only pending orders can be cancelled",
            order.id
        ))),
    }
}

/// Applies a verified payment event to its (locked) order once: the same id with the
/// same body is a duplicate that changes nothing, with another body a conflict; a
/// success must carry the order's price; a failure cancels a pending order and leaves a
/// credited one alone.
pub fn apply_event<R: OrderRepo>(
    repo: &mut R,
    order: Order,
    event: &Event,
    body_hash: &str,
    now: Timestamp,
) -> Result<EventOutcome, PaymentError> {
    let duplicate = |order| EventOutcome {
        order,
        duplicate: true,
        credited_now: false,
    };
    if let Some(hash) = repo.event_body_hash(&event.id)? {
        if hash != body_hash {
            return Err(PaymentError::Conflict(format!(
                "event {:?} was already received with another body",
                event.id
            )));
        }
        return Ok(duplicate(order));
    }
    if event.kind == EventKind::Succeeded
        && (event.amount_minor != order.price.minor || event.currency != order.price.currency)
    {
        return Err(PaymentError::Invalid(format!(
            "order {} costs {}, the event says {} {}",
            order.id, order.price, event.amount_minor, event.currency
        )));
    }
    let inserted = repo.insert_event(NewEvent {
        event_id: &event.id,
        body_hash,
        kind: event.kind.as_str(),
        order_id: order.id,
        received_at: now,
    })?;
    if !inserted {
        // Another delivery of this event (for another order's account) won.
        return Ok(duplicate(order));
    }
    Ok(match event.kind {
        EventKind::Succeeded => {
            let outcome = confirm(
                repo,
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
                cancel(repo, order, now)?
            } else {
                order
            };
            EventOutcome {
                order,
                duplicate: false,
                credited_now: false,
            }
        }
    })
}
