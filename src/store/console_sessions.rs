//! The console's server-side sessions.

use super::AdminTokenId;
use super::audit::insert_audit;
use super::schema::{admin_tokens, console_sessions};
use super::{Store, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::Timestamp;
use crate::ledger::token::{constant_time_eq, random_hex, sha256_hex};
use diesel::prelude::*;

/// A current console session.
#[derive(Clone, Debug)]
pub struct ConsoleSession {
    /// The admin token's name: the "who" of the audit lines.
    pub token_name: String,
    /// CSRF tokens of the session's forms derive from it.
    pub csrf_nonce: String,
    pub expires_at: Timestamp,
}

impl ConsoleSession {
    /// How audit lines name the operator.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_name)
    }
}

impl Store {
    /// Opens a console session for the admin token `secret`: answers the session's own
    /// secret (for the cookie) and the session, or `None` when the token is unknown or
    /// revoked. The sign-in is audited in the same transaction.
    pub fn open_console_session(
        &self,
        secret: &str,
        ttl_secs: i64,
    ) -> Result<Option<(String, ConsoleSession)>, AppError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        let session_secret = random_hex(32);
        let session_hash = sha256_hex(&session_secret);
        let nonce = random_hex(16);
        let expires_at = now.saturating_add(ttl_secs.saturating_mul(1_000_000));
        let opened = write_tx!(self, |c| {
            let token: Option<(AdminTokenId, String, String)> = admin_tokens::table
                .filter(admin_tokens::token_hash.eq(&hash))
                .filter(admin_tokens::revoked_at.is_null())
                .select((
                    admin_tokens::id,
                    admin_tokens::name,
                    admin_tokens::token_hash,
                ))
                .first(c)
                .optional()?;
            let Some((id, name, _)) = token.filter(|(_, _, h)| constant_time_eq(h, &hash)) else {
                return Ok::<_, AppError>(None);
            };
            diesel::insert_into(console_sessions::table)
                .values((
                    console_sessions::id_hash.eq(&session_hash),
                    console_sessions::token_id.eq(id),
                    console_sessions::csrf_nonce.eq(&nonce),
                    console_sessions::created_at.eq(now),
                    console_sessions::expires_at.eq(expires_at),
                ))
                .execute(c)?;
            insert_audit(c, now, &format!("token:{name}"), "sign_in", "console", "")?;
            Ok(Some(name))
        })?;
        Ok(opened.map(|token_name| {
            (
                session_secret,
                ConsoleSession {
                    token_name,
                    csrf_nonce: nonce,
                    expires_at: Timestamp::from_micros(expires_at),
                },
            )
        }))
    }

    /// The session behind a cookie's secret, if it has not ended, has not expired and
    /// its admin token is not revoked.
    pub fn console_session(&self, secret: &str) -> Result<Option<ConsoleSession>, AppError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        let row: Option<(String, String, i64)> = read_tx!(self, |c| {
            console_sessions::table
                .inner_join(admin_tokens::table)
                .filter(console_sessions::id_hash.eq(&hash))
                .filter(console_sessions::ended_at.is_null())
                .filter(console_sessions::expires_at.gt(now))
                .filter(admin_tokens::revoked_at.is_null())
                .select((
                    admin_tokens::name,
                    console_sessions::csrf_nonce,
                    console_sessions::expires_at,
                ))
                .first(c)
                .optional()
        })?;
        Ok(
            row.map(|(token_name, csrf_nonce, expires_at)| ConsoleSession {
                token_name,
                csrf_nonce,
                expires_at: Timestamp::from_micros(expires_at),
            }),
        )
    }

    /// Ends the session behind `secret` (sign-out); audited.
    pub fn end_console_session(&self, secret: &str, actor: &str) -> Result<(), AppError> {
        let hash = sha256_hex(secret);
        let now = self.now().micros();
        write_tx!(self, |c| {
            let n = diesel::update(
                console_sessions::table
                    .filter(console_sessions::id_hash.eq(&hash))
                    .filter(console_sessions::ended_at.is_null()),
            )
            .set(console_sessions::ended_at.eq(now))
            .execute(c)?;
            if n > 0 {
                insert_audit(c, now, actor, "sign_out", "console", "")?;
            }
            Ok::<_, AppError>(())
        })
    }
}
