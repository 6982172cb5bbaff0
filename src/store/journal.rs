//! The journal: exports and consumption per database (a statement page and consumption per day are read with the rest of an account's money: `statement.rs`).

use super::orders::stored_price;
use super::rows::{JournalRow, convert, credits};
use super::schema::{accounts, journal, orders};
use super::{Store, read_tx};
use crate::ledger::{
    AccountId, Credits, EntryKind, JournalEntry, LedgerError, ServiceId, Timestamp,
};
use crate::payments::{OrderStatus, Price};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

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

impl Store {
    /// Up to `limit` journal entries of an account after `after_seq` (all, when `None`),
    /// oldest first: the keyset page an export reads at a time.
    pub fn journal_after(
        &self,
        account_id: AccountId,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, LedgerError> {
        let rows: Vec<JournalRow> = read_tx!(self, |c| {
            journal::table
                .filter(journal::account_id.eq(account_id))
                .filter(journal::seq.gt(after_seq.unwrap_or(i64::MIN)))
                .order(journal::seq.asc())
                .limit(limit)
                .select(JournalRow::as_select())
                .load::<JournalRow>(c)
        })?;
        Ok(convert(rows)?)
    }

    /// Per database of a service: accounts, credits consumed since `since`, and credited
    /// orders since `since` with their revenue per currency.
    pub fn service_usage(
        &self,
        service_id: ServiceId,
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
}
