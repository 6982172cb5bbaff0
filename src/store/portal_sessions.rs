//! The portal's signing secret and revoked sessions.

use super::schema::{portal_revoked_sessions, portal_secrets};
use super::{Store, read_one, write_tx};
use crate::error::AppError;
use crate::ledger::token::random_hex;
use diesel::prelude::*;

impl Store {
    /// A random secret shared by every replica: created once, on first use, in the
    /// database (the first writer wins; everyone reads the stored value).
    pub fn portal_secret(&self, name: &str) -> Result<String, AppError> {
        let candidate = random_hex(32);
        let now = self.now().micros();
        write_tx!(self, |c| {
            diesel::insert_into(portal_secrets::table)
                .values((
                    portal_secrets::name.eq(name),
                    portal_secrets::value.eq(&candidate),
                    portal_secrets::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            portal_secrets::table
                .find(name)
                .select(portal_secrets::value)
                .first::<String>(c)
        })
        .map_err(AppError::from)
    }

    /// Ends the portal session with `nonce` (a logout): its cookie opens nothing any more.
    /// `expires_at` (Unix seconds) is the cookie's own expiry, after which the row is
    /// dropped again; the rows of sessions already expired go at the same time.
    pub fn revoke_portal_session(&self, nonce: &str, expires_at: i64) -> Result<(), AppError> {
        let now_secs = self.now().micros() / 1_000_000;
        write_tx!(self, |c| {
            diesel::delete(
                portal_revoked_sessions::table
                    .filter(portal_revoked_sessions::expires_at.le(now_secs)),
            )
            .execute(c)?;
            diesel::insert_into(portal_revoked_sessions::table)
                .values((
                    portal_revoked_sessions::nonce.eq(nonce),
                    portal_revoked_sessions::expires_at.eq(expires_at),
                ))
                .on_conflict_do_nothing()
                .execute(c)
        })
        .map(|_| ())
        .map_err(AppError::from)
    }

    /// Whether the portal session with `nonce` logged out.
    pub fn portal_session_revoked(&self, nonce: &str) -> Result<bool, AppError> {
        read_one!(self, |c| {
            diesel::select(diesel::dsl::exists(
                portal_revoked_sessions::table.filter(portal_revoked_sessions::nonce.eq(nonce)),
            ))
            .get_result::<bool>(c)
        })
        .map_err(AppError::from)
    }
}
