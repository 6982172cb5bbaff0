//! The ledger's operations (grant, authorize, capture, cancel, settle) run by the engine, balances read, the invariant audit (lots, holds and the journal page: `statement.rs`).

use super::audit::{AuditRecord, write_audit_record};
use super::engine::{Op, Output};
use super::idempotency_keys::{Idempotency, remember_answer, stored_answer};
use super::schema::{accounts, hold_allocations, holds, journal, lots};
use super::{Store, read_tx, write_tx};
use crate::ledger::ops::{CloseOutcome, GrantOutcome};
use crate::ledger::repo::HoldRepo;
use crate::ledger::token::transaction_key;
use crate::ledger::{
    AccountId, Audit, Balance, Credits, Hold, HoldId, HoldStatus, LedgerError, ServiceId,
    Timestamp, ops,
};
use crate::telemetry::METRICS;
use diesel::prelude::*;

pub(super) fn unexpected() -> LedgerError {
    LedgerError::from(crate::ledger::StorageError::failed(
        "the ledger engine answered another operation",
    ))
}

pub(super) fn authorized(
    reply: Result<Output, LedgerError>,
) -> Result<(Hold, Balance), LedgerError> {
    match reply {
        Ok(Output::Authorized(hold, balance)) => Ok((hold, balance)),
        Ok(Output::Closed(_)) => Err(unexpected()),
        Err(e) => Err(e),
    }
}

pub(super) fn closed(reply: Result<Output, LedgerError>) -> Result<CloseOutcome, LedgerError> {
    match reply {
        Ok(Output::Closed(outcome)) => Ok(outcome),
        Ok(Output::Authorized(..)) => Err(unexpected()),
        Err(e) => Err(e),
    }
}

/// A grant as the admin API and the CLI ask for it.
pub type GrantRequest<'a> = ops::Grant<'a>;

impl Store {
    /// Adds credits; see [`ops::grant`].
    pub fn grant(&self, req: &GrantRequest<'_>) -> Result<GrantOutcome, LedgerError> {
        let now = self.now();
        let result = write_tx!(self, |c| ops::grant(c, req, now));
        METRICS.ledger("grant", &result);
        result
    }

    /// A grant that answers a retry with the first answer. Returns the answer as stored
    /// and whether it is a replay.
    pub fn grant_idempotent(
        &self,
        req: &GrantRequest<'_>,
        idem: &Idempotency<'_>,
    ) -> Result<(serde_json::Value, bool), LedgerError> {
        self.grant_idempotent_with(req, idem, None)
    }

    /// [`Store::grant_idempotent`] by an operator, audited in the same transaction (a
    /// replay too: the operator sent the form again); `detail` is told whether it was one.
    pub fn grant_idempotent_audited(
        &self,
        req: &GrantRequest<'_>,
        idem: &Idempotency<'_>,
        audit: &AuditRecord,
        detail: &dyn Fn(bool) -> String,
    ) -> Result<(serde_json::Value, bool), LedgerError> {
        self.grant_idempotent_with(req, idem, Some((audit, detail)))
    }

    fn grant_idempotent_with(
        &self,
        req: &GrantRequest<'_>,
        idem: &Idempotency<'_>,
        audit: Option<(&AuditRecord, &dyn Fn(bool) -> String)>,
    ) -> Result<(serde_json::Value, bool), LedgerError> {
        let now = self.now();
        write_tx!(self, |c| {
            // Lock first so a concurrent retry waits here and then sees our key.
            c.lock_account(req.account_id)
                .map_err(LedgerError::unknown_if_missing)?;
            if let Some(value) = stored_answer(c, idem)? {
                if let Some((record, detail)) = audit {
                    write_audit_record(c, now.micros(), &record.with_detail(detail(true)))?;
                }
                return Ok((value, true));
            }
            let outcome = ops::grant(c, req, now)?;
            let value = serde_json::to_value(&outcome)
                .map_err(|e| LedgerError::from(crate::ledger::StorageError::failed(e)))?;
            remember_answer(c, idem, &value, now)?;
            if let Some((record, detail)) = audit {
                write_audit_record(c, now.micros(), &record.with_detail(detail(false)))?;
            }
            Ok((value, false))
        })
    }

    /// The operation an authorize asks of the engine, with its secret token.
    fn authorize_op(
        &self,
        account_id: AccountId,
        amount: Credits,
        ttl_hours: i64,
        description: Option<&str>,
    ) -> Result<(Op, String, Timestamp), LedgerError> {
        let now = self.now();
        let expires_at = ops::hold_expiry(now, ttl_hours, self.max_hold_ttl_hours)?;
        let (token, key) = crate::ledger::token::new_transaction_token(now.micros());
        let op = Op::Authorize {
            account_id,
            amount,
            expires_at,
            token_hash: key,
            description: description.map(str::to_owned),
        };
        Ok((op, token, now))
    }

    /// Reserves credits for `ttl_hours` (at least 1, capped by `ledger.max_hold_ttl_hours`);
    /// returns the hold and its secret transaction token.
    pub fn authorize(
        &self,
        account_id: AccountId,
        amount: Credits,
        ttl_hours: i64,
        description: Option<&str>,
    ) -> Result<(Hold, String, Balance), LedgerError> {
        let (op, token, now) = self.authorize_op(account_id, amount, ttl_hours, description)?;
        let result = authorized(self.engine.run(op, now));
        METRICS.ledger("authorize", &result);
        let (hold, balance) = result?;
        Ok((hold, token, balance))
    }

    /// [`Store::authorize`] without a thread waiting for the engine.
    pub async fn authorize_async(
        &self,
        account_id: AccountId,
        amount: Credits,
        ttl_hours: i64,
        description: Option<&str>,
    ) -> Result<(Hold, String, Balance), LedgerError> {
        let (op, token, now) = self.authorize_op(account_id, amount, ttl_hours, description)?;
        let result = authorized(self.engine.run_async(op, now).await);
        METRICS.ledger("authorize", &result);
        let (hold, balance) = result?;
        Ok((hold, token, balance))
    }

    /// Runs a capture or cancel (`call`, as metrics name it) in the engine.
    fn close(&self, call: &'static str, op: Op) -> Result<CloseOutcome, LedgerError> {
        let result = closed(self.engine.run(op, self.now()));
        METRICS.ledger(call, &result);
        result
    }

    /// [`Store::close`] without a thread waiting for the engine.
    async fn close_async(&self, call: &'static str, op: Op) -> Result<CloseOutcome, LedgerError> {
        let result = closed(self.engine.run_async(op, self.now()).await);
        METRICS.ledger(call, &result);
        result
    }

    fn capture_op(hold_token: &str, amount: Option<Credits>, service_id: Option<ServiceId>) -> Op {
        Op::Capture {
            token_hash: transaction_key(hold_token),
            amount,
            service_id,
        }
    }

    /// Captures `amount` of a hold, or all of it when `None`.
    pub fn capture(
        &self,
        hold_token: &str,
        amount: Option<Credits>,
        service_id: Option<ServiceId>,
    ) -> Result<CloseOutcome, LedgerError> {
        self.close("capture", Self::capture_op(hold_token, amount, service_id))
    }

    /// [`Store::capture`] without a thread waiting for the engine.
    pub async fn capture_async(
        &self,
        hold_token: &str,
        amount: Option<Credits>,
        service_id: Option<ServiceId>,
    ) -> Result<CloseOutcome, LedgerError> {
        self.close_async("capture", Self::capture_op(hold_token, amount, service_id))
            .await
    }

    fn cancel_op(hold_token: &str, service_id: Option<ServiceId>) -> Op {
        Op::Cancel {
            token_hash: transaction_key(hold_token),
            service_id,
        }
    }

    pub fn cancel(
        &self,
        hold_token: &str,
        service_id: Option<ServiceId>,
    ) -> Result<CloseOutcome, LedgerError> {
        self.close("cancel", Self::cancel_op(hold_token, service_id))
    }

    /// [`Store::cancel`] without a thread waiting for the engine.
    pub async fn cancel_async(
        &self,
        hold_token: &str,
        service_id: Option<ServiceId>,
    ) -> Result<CloseOutcome, LedgerError> {
        self.close_async("cancel", Self::cancel_op(hold_token, service_id))
            .await
    }

    /// Closes what has expired on one account.
    pub fn settle(&self, account_id: AccountId) -> Result<Balance, LedgerError> {
        let now = self.now();
        let result = write_tx!(self, |c| ops::settle_account(c, account_id, now));
        METRICS.ledger("settle", &result);
        result
    }

    /// Current figures, expiries counted even before they are written.
    pub fn balance(&self, account_id: AccountId) -> Result<Balance, LedgerError> {
        let now = self.now();
        read_tx!(self, |c| ops::balance(c, account_id, now))
    }

    /// The balance as it stood at `at`.
    pub fn balance_at(&self, account_id: AccountId, at: Timestamp) -> Result<Credits, LedgerError> {
        let now = self.now();
        if at >= now {
            return Ok(self.balance(account_id)?.balance);
        }
        read_tx!(self, |c| ops::balance_at(c, account_id, at))
    }

    /// Accounts with holds or lots expired but not yet closed, at most `limit`.
    pub fn accounts_to_settle(&self, limit: i64) -> Result<Vec<AccountId>, LedgerError> {
        let now = self.now().micros();
        let mut ids: Vec<AccountId> = read_tx!(self, |c| {
            let mut ids: Vec<AccountId> = holds::table
                .filter(holds::status.eq(HoldStatus::Open.as_str()))
                .filter(holds::expires_at.le(now))
                .select(holds::account_id)
                .distinct()
                .limit(limit)
                .load(c)?;
            let lot_ids: Vec<AccountId> = lots::table
                .filter(lots::remaining.gt(0))
                .filter(lots::expires_at.le(now))
                .select(lots::account_id)
                .distinct()
                .limit(limit)
                .load(c)?;
            ids.extend(lot_ids);
            Ok::<_, LedgerError>(ids)
        })?;
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(ids)
    }

    /// Reads the stored totals and recomputes them from the rows, in one snapshot.
    pub fn audit(&self, account_id: AccountId) -> Result<Audit, LedgerError> {
        read_tx!(self, |c| {
            let (balance, reserved): (i64, i64) = accounts::table
                .find(account_id)
                .select((accounts::balance, accounts::reserved))
                .first(c)?;
            let amounts: Vec<i64> = journal::table
                .filter(journal::account_id.eq(account_id))
                .order(journal::seq)
                .select(journal::amount)
                .load(c)?;
            let last_balance_after: Option<i64> = journal::table
                .filter(journal::account_id.eq(account_id))
                .order(journal::seq.desc())
                .select(journal::balance_after)
                .first(c)
                .optional()?;
            let open_holds: Vec<(HoldId, i64)> = holds::table
                .filter(holds::account_id.eq(account_id))
                .filter(holds::status.eq(HoldStatus::Open.as_str()))
                .select((holds::id, holds::amount))
                .load(c)?;
            // Allocations of closed holds must not linger, so count them all.
            let all_allocations: i64 = hold_allocations::table
                .inner_join(holds::table.on(holds::id.eq(hold_allocations::hold_id)))
                .filter(holds::account_id.eq(account_id))
                .select(hold_allocations::amount)
                .load::<i64>(c)?
                .iter()
                .sum();
            let remaining: Vec<i64> = lots::table
                .filter(lots::account_id.eq(account_id))
                .select(lots::remaining)
                .load(c)?;
            Ok::<_, LedgerError>(Audit {
                balance,
                journal_sum: amounts.iter().sum(),
                last_balance_after: last_balance_after.unwrap_or(0),
                reserved,
                open_holds_sum: open_holds.iter().map(|h| h.1).sum(),
                allocations_sum: all_allocations,
                lots_remaining_sum: remaining.iter().sum(),
            })
        })
    }
}
