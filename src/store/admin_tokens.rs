//! Admin API tokens: created (stored hashed, shown once), verified, listed, revoked.

use super::audit::{AuditRecord, write_audit_record};
use super::schema::{admin_tokens, console_sessions};
use super::{Store, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::token::{constant_time_eq, random_hex, sha256_hex};
use crate::ledger::{LedgerError, Timestamp, entity_id};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::result::Error as DieselError;

entity_id! {
    /// An admin token's row (its sessions point to it).
    pub AdminTokenId
}

/// A token that may call the admin API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdminToken {
    pub name: String,
}

/// An admin token as the console lists it (never its secret or hash).
#[derive(Clone, Debug)]
pub struct AdminTokenInfo {
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Store {
    /// Creates a token named `name` and returns the secret (the only time it is seen).
    pub fn create_admin_token(&self, name: &str) -> Result<String, AppError> {
        self.create_admin_token_with(name, None)
    }

    /// [`Store::create_admin_token`] with the operator's audit line, written in the
    /// same transaction.
    pub fn create_admin_token_audited(
        &self,
        name: &str,
        audit: &AuditRecord,
    ) -> Result<String, AppError> {
        self.create_admin_token_with(name, Some(audit))
    }

    fn create_admin_token_with(
        &self,
        name: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<String, AppError> {
        let name = crate::ledger::text::operator_name("token", name).map_err(AppError::Invalid)?;
        let secret = format!("iapadm_{}", random_hex(24));
        let hash = sha256_hex(&secret);
        let now = self.now().micros();
        write_tx!(self, |c| {
            diesel::insert_into(admin_tokens::table)
                .values((
                    admin_tokens::name.eq(name),
                    admin_tokens::token_hash.eq(&hash),
                    admin_tokens::created_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match e {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        AppError::Conflict(format!("admin token {name:?}"))
                    }
                    other => other.into(),
                })?;
            if let Some(audit) = audit {
                write_audit_record(c, now, audit)?;
            }
            Ok::<_, AppError>(())
        })?;
        Ok(secret)
    }

    /// The token matching `secret`, unless unknown or revoked.
    pub fn verify_admin_token(&self, secret: &str) -> Result<Option<AdminToken>, AppError> {
        let hash = sha256_hex(secret);
        let row: Option<(String, String)> = read_tx!(self, |c| {
            admin_tokens::table
                .filter(admin_tokens::token_hash.eq(&hash))
                .filter(admin_tokens::revoked_at.is_null())
                .select((admin_tokens::name, admin_tokens::token_hash))
                .first(c)
                .optional()
        })?;
        Ok(row
            .filter(|(_, stored)| constant_time_eq(stored, &hash))
            .map(|(name, _)| AdminToken { name }))
    }

    /// Revokes the token named `name`; false when there is none.
    pub fn revoke_admin_token(&self, name: &str) -> Result<bool, AppError> {
        let now = self.now().micros();
        let n = write_tx!(self, |c| {
            diesel::update(
                admin_tokens::table
                    .filter(admin_tokens::name.eq(name))
                    .filter(admin_tokens::revoked_at.is_null()),
            )
            .set(admin_tokens::revoked_at.eq(now))
            .execute(c)
        })?;
        Ok(n > 0)
    }

    /// Revokes the admin token `name` and ends its console sessions, audited in the same
    /// transaction; false (and no line) when there is no such active token.
    pub fn revoke_admin_token_and_sessions(
        &self,
        name: &str,
        audit: &AuditRecord,
    ) -> Result<bool, LedgerError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            let ids: Vec<AdminTokenId> = admin_tokens::table
                .filter(admin_tokens::name.eq(name))
                .filter(admin_tokens::revoked_at.is_null())
                .select(admin_tokens::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok::<_, LedgerError>(false);
            }
            diesel::update(admin_tokens::table.filter(admin_tokens::id.eq_any(&ids)))
                .set(admin_tokens::revoked_at.eq(now))
                .execute(c)?;
            diesel::update(
                console_sessions::table
                    .filter(console_sessions::token_id.eq_any(&ids))
                    .filter(console_sessions::ended_at.is_null()),
            )
            .set(console_sessions::ended_at.eq(now))
            .execute(c)?;
            write_audit_record(c, now, audit)?;
            Ok(true)
        })
    }

    /// Admin tokens, oldest first.
    pub fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>, LedgerError> {
        let rows: Vec<(String, i64, Option<i64>)> = read_tx!(self, |c| {
            admin_tokens::table
                .order(admin_tokens::id)
                .select((
                    admin_tokens::name,
                    admin_tokens::created_at,
                    admin_tokens::revoked_at,
                ))
                .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, created, revoked)| AdminTokenInfo {
                name,
                created_at: Timestamp::from_micros(created),
                revoked_at: revoked.map(Timestamp::from_micros),
            })
            .collect())
    }
}
