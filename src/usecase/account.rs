//! The account page: everything a customer sees of one account (balance, lots, holds,
//! the statement's page, consumption per day, packs on sale, recent orders, the trial
//! offer, company restrictions, SMS per day), read for the portal in one call.

use super::contact;
use crate::ledger::time::MICROS_PER_DAY;
use crate::ledger::{
    Account, Balance, Credits, Hold, JournalEntry, LedgerError, Lot, Service, Timestamp,
};
use crate::payments::{Order, Pack, PaymentError};
use crate::store::sms::SmsDay;
use crate::store::{OrderFilter, StatementRequest, Store};

/// Which part of the account is asked for.
pub struct ViewRequest {
    /// Days of consumption shown, ending today.
    pub range_days: i64,
    /// The statement's page: entries before this sequence number (newest first).
    pub before: Option<i64>,
    /// Statement entries per page.
    pub page: i64,
    /// Orders shown, newest first.
    pub orders: i64,
    /// The technical name of the SMS service (its accounts also show SMS per day).
    pub sms_service: String,
}

/// What the account page shows.
pub struct AccountView {
    pub account: Account,
    pub service: Service,
    pub balance: Balance,
    /// Lots with credits that have not expired.
    pub lots: Vec<Lot>,
    /// Open holds that have not expired.
    pub holds: Vec<Hold>,
    pub journal: Vec<JournalEntry>,
    /// There are older statement entries than this page.
    pub more: bool,
    /// Consumption per day (day number, credits) from `first_day`.
    pub daily: Vec<(i64, Credits)>,
    /// The first day of `daily`.
    pub first_day: i64,
    pub packs: Vec<Pack>,
    pub orders: Vec<Order>,
    pub trial_available: bool,
    /// Companies the account is restricted to in Odoo (when its database is registered).
    pub companies: Vec<String>,
    /// SMS per day, for the SMS service's accounts.
    pub sms: Option<Vec<SmsDay>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    App(#[from] crate::error::AppError),
}

/// The page of `account` (whose access the caller checked) as of now.
pub fn view(
    store: &Store,
    account: Account,
    service: Service,
    r: &ViewRequest,
) -> Result<AccountView, ViewError> {
    let id = account.id;
    let now = store.now();
    let today = now.micros().div_euclid(MICROS_PER_DAY);
    let first_day = today - r.range_days + 1;
    // The money in one transaction: the figures agree with each other.
    let statement = store.statement(
        id,
        &StatementRequest {
            before_seq: r.before,
            page: r.page + 1,
            since: Some(Timestamp::from_day(first_day)),
        },
    )?;
    let lots = statement
        .lots
        .into_iter()
        .filter(|l| l.expires_at > now)
        .collect();
    let holds = statement
        .holds
        .into_iter()
        .filter(|h| h.expires_at > now)
        .collect();
    let mut journal = statement.journal;
    let more = journal.len() as i64 > r.page;
    journal.truncate(usize::try_from(r.page).unwrap_or(0));
    let packs = store.packs(service.id, true)?;
    let orders = store.orders(&OrderFilter {
        account_id: Some(id),
        status: None,
        limit: r.orders,
        offset: 0,
    })?;
    let trial_available = contact::trial_offered(store, &service, Some(&account), None)?;
    let companies = store.account_companies(&account)?;
    let sms = (service.technical_name == r.sms_service)
        .then(|| store.sms_days(id, r.range_days))
        .transpose()?;
    Ok(AccountView {
        account,
        service,
        balance: statement.balance,
        lots,
        holds,
        journal,
        more,
        daily: statement.daily,
        first_day,
        packs,
        orders,
        trial_available,
        companies,
        sms,
    })
}
