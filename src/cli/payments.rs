//! Operator commands for packs and orders (`iap-sidecar pack …`, `iap-sidecar order …`).

use clap::Subcommand;

use super::CliError;
use crate::ledger::{AccountId, Credits};
use crate::payments::{Confirmation, OrderId, OrderStatus, PackId, PackInput, PaymentError, Price};
use crate::store::{OrderFilter, Store};

#[derive(Subcommand, Debug)]
pub enum OrderCommand {
    /// Orders, newest first.
    List {
        /// `pending`, `paid`, `credited` or `cancelled`.
        #[arg(long)]
        status: Option<String>,
        /// Only this account's orders.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<AccountId>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Confirm that order ID is paid and credit it (a second confirmation changes nothing).
    Confirm {
        id: OrderId,
        /// The payment's reference (bank transfer, provider payment id).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Cancel pending order ID.
    Cancel { id: OrderId },
}

#[derive(Subcommand, Debug)]
pub enum PackCommand {
    /// Put a pack on sale: NAME gives CREDITS for PRICE (e.g. 12.50) in CURRENCY (ISO 4217).
    Add {
        service: String,
        name: String,
        credits: Credits,
        price: String,
        currency: String,
    },
    /// The packs of SERVICE.
    List { service: String },
    /// Take pack ID of SERVICE off sale.
    Disable { service: String, id: PackId },
    /// Put pack ID of SERVICE back on sale.
    Enable { service: String, id: PackId },
}

impl From<PaymentError> for CliError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Ledger(e) => CliError::Ledger(e),
            other => CliError::Usage(other.to_string()),
        }
    }
}

fn print_order(o: &crate::payments::Order) -> std::io::Result<()> {
    say!(
        "#{} {:<9} account {} · {} · {} credits · {} · ordered {}{}",
        o.id,
        o.status,
        o.account_id,
        o.pack_name,
        o.credits,
        o.price,
        o.created_at,
        o.lot_id.map(|l| format!(" · lot {l}")).unwrap_or_default()
    )
}

pub fn order(store: &Store, cmd: OrderCommand) -> Result<(), CliError> {
    match cmd {
        OrderCommand::List {
            status,
            account,
            limit,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
                    CliError::Usage("--status must be pending, paid, credited or cancelled".into())
                })?),
            };
            let orders = store.orders(&OrderFilter {
                account_id: account,
                status,
                limit: limit.clamp(1, 10_000),
                offset: 0,
            })?;
            if orders.is_empty() {
                say!("no orders")?;
            }
            for o in &orders {
                print_order(o)?;
            }
        }
        OrderCommand::Confirm { id, reference } => {
            let outcome = store.confirm_order(
                id,
                &Confirmation {
                    by: "operator".into(),
                    reference,
                },
            )?;
            print_order(&outcome.order)?;
            match (outcome.credited_now, outcome.credit_error) {
                (true, _) => say!("credited")?,
                (false, Some(e)) => {
                    return Err(CliError::Usage(format!(
                        "order {id} is recorded as paid but could not be credited: {e}"
                    )));
                }
                (false, None) => say!("already credited: nothing changed")?,
            }
        }
        OrderCommand::Cancel { id } => {
            let order = store.cancel_order(id, None)?;
            print_order(&order)?;
        }
    }
    Ok(())
}

pub fn pack(store: &Store, cmd: PackCommand) -> Result<(), CliError> {
    match cmd {
        PackCommand::Add {
            service,
            name,
            credits,
            price,
            currency,
        } => {
            let service = store.service_by_name(&service)?;
            let price =
                Price::parse(&price, &currency).map_err(|e| CliError::Usage(e.to_string()))?;
            let pack = store.create_pack(
                service.id,
                &PackInput {
                    name,
                    credits,
                    price,
                    active: true,
                },
            )?;
            say!(
                "pack {} of {}: {} · {} credits · {}",
                pack.id,
                service.technical_name,
                pack.name,
                pack.credits,
                pack.price
            )?;
        }
        PackCommand::List { service } => {
            let service = store.service_by_name(&service)?;
            let packs = store.packs(service.id, false)?;
            if packs.is_empty() {
                say!("no packs")?;
            }
            for p in packs {
                say!(
                    "{}\t{}\t{} credits\t{}\t{}",
                    p.id,
                    p.name,
                    p.credits,
                    p.price,
                    if p.active { "on sale" } else { "off sale" }
                )?;
            }
        }
        PackCommand::Disable { service, id } => set_active(store, &service, id, false)?,
        PackCommand::Enable { service, id } => set_active(store, &service, id, true)?,
    }
    Ok(())
}

fn set_active(store: &Store, service: &str, id: PackId, active: bool) -> Result<(), CliError> {
    let service = store.service_by_name(service)?;
    let pack = store
        .packs(service.id, false)?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| CliError::Usage(format!("no pack {id} for {}", service.technical_name)))?;
    let pack = store.update_pack(
        service.id,
        id,
        &PackInput {
            name: pack.name,
            credits: pack.credits,
            price: pack.price,
            active,
        },
    )?;
    say!(
        "pack {} ({}) is {}",
        pack.id,
        pack.name,
        if pack.active { "on sale" } else { "off sale" }
    )?;
    Ok(())
}
