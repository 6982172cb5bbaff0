//! The operators' audit log: one line per change made through the console, the admin API or the CLI.

use super::schema::audit_log;
use super::{Store, read_tx};
use crate::ledger::{LedgerError, Timestamp, entity_id};
use diesel::prelude::*;

entity_id! {
    /// A line of the audit log.
    pub AuditLineId
}

/// One operator action.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditLine {
    #[schema(value_type = i64)]
    pub id: AuditLineId,
    /// RFC 3339, UTC.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// `token:<admin token name>`.
    pub actor: String,
    /// e.g. `grant`, `order.confirm`, `service.rotate_key`.
    pub action: String,
    /// What it acted on (`account:7`, `service:sms`, …).
    pub target: String,
    pub detail: String,
}

/// The audit line of an operator action, handed to the store function that performs it:
/// the store writes it in the action's own transaction, so the line exists if and only
/// if the action committed (a refused or failed action leaves none).
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// `token:<admin token name>`.
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: String,
}

/// An audit line whose detail is made, in the action's transaction, from what the action
/// did (its outcome `T`).
pub type AuditWith<'a, T> = (&'a AuditRecord, fn(&T) -> String);

impl AuditRecord {
    /// The same line with `detail` (known only once the action ran, in its transaction).
    pub fn with_detail(&self, detail: String) -> AuditRecord {
        AuditRecord {
            detail,
            ..self.clone()
        }
    }
}

/// Writes an audit line on either backend's connection, inside the caller's transaction.
pub(crate) trait WriteAudit {
    fn write_audit(
        &mut self,
        at: i64,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> QueryResult<usize>;
}

macro_rules! write_audit_for {
    ($conn:ty) => {
        impl WriteAudit for $conn {
            fn write_audit(
                &mut self,
                at: i64,
                actor: &str,
                action: &str,
                target: &str,
                detail: &str,
            ) -> QueryResult<usize> {
                diesel::insert_into(audit_log::table)
                    .values((
                        audit_log::at.eq(at),
                        audit_log::actor.eq(actor),
                        audit_log::action.eq(action),
                        audit_log::target.eq(target),
                        audit_log::detail.eq(detail),
                    ))
                    .execute(self)
            }
        }
    };
}

write_audit_for!(diesel::SqliteConnection);

write_audit_for!(diesel::PgConnection);

pub(super) fn insert_audit(
    c: &mut impl WriteAudit,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), LedgerError> {
    c.write_audit(at, actor, action, target, detail)?;
    Ok(())
}

/// Writes `record` inside the caller's transaction (the action's own).
pub(crate) fn write_audit_record(
    c: &mut impl WriteAudit,
    at: i64,
    record: &AuditRecord,
) -> Result<(), LedgerError> {
    insert_audit(
        c,
        at,
        &record.actor,
        record.action,
        &record.target,
        &record.detail,
    )
}

impl Store {
    /// Audit lines, newest first; `before` pages back from an id.
    pub fn audit_log(
        &self,
        limit: i64,
        before: Option<AuditLineId>,
    ) -> Result<Vec<AuditLine>, LedgerError> {
        let rows: Vec<(AuditLineId, i64, String, String, String, String)> = read_tx!(self, |c| {
            let mut query = audit_log::table
                .order(audit_log::id.desc())
                .limit(limit.clamp(1, 1000))
                .select((
                    audit_log::id,
                    audit_log::at,
                    audit_log::actor,
                    audit_log::action,
                    audit_log::target,
                    audit_log::detail,
                ))
                .into_boxed();
            if let Some(before) = before {
                query = query.filter(audit_log::id.lt(before));
            }
            query.load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, target, detail)| AuditLine {
                id,
                at: Timestamp::from_micros(at),
                actor,
                action,
                target,
                detail,
            })
            .collect())
    }
}
