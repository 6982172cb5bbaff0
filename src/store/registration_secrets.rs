//! Registration secrets: what lets an Odoo database register.

use super::schema::registration_secrets;
use super::{Store, read_tx, write_tx};
use crate::error::AppError;
use crate::ledger::Timestamp;
use crate::ledger::token::{constant_time_eq, random_hex, sha256_hex};
use diesel::prelude::*;

/// A registration secret as operators see it (never the secret: only its hash is kept).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RegistrationSecretInfo {
    pub name: String,
    pub created_at: Timestamp,
    /// The databases it may register; `None`: any database.
    pub dbuuids: Option<Vec<String>>,
    pub revoked_at: Option<Timestamp>,
}

/// What revoking a registration secret found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now.
    Revoked,
    /// Revoked before, at this time: nothing changed.
    AlreadyRevoked(Timestamp),
    /// No secret has that name.
    Unknown,
}

/// A secret's stored scope: a JSON array of dbuuids, or NULL for any database.
pub(super) fn parse_scope(scope: Option<String>) -> Result<Option<Vec<String>>, AppError> {
    scope
        .map(|list| {
            serde_json::from_str::<Vec<String>>(&list).map_err(|e| {
                AppError::from(crate::ledger::StorageError::failed(format!(
                    "registration secret scope: {e}"
                )))
            })
        })
        .transpose()
}

impl Store {
    /// A registration secret (printed once): it lets an Odoo addon register its database.
    pub fn create_registration_secret(&self, name: &str) -> Result<String, AppError> {
        self.create_registration_secret_for(name, &[])
    }

    /// [`Store::create_registration_secret`] limited to the databases `dbuuids` (none:
    /// any database).
    pub fn create_registration_secret_for(
        &self,
        name: &str,
        dbuuids: &[String],
    ) -> Result<String, AppError> {
        if !dbuuids.iter().all(|d| crate::ledger::text::dbuuid(d)) {
            return Err(AppError::Invalid(
                "each dbuuid must be 1-64 characters".into(),
            ));
        }
        let scope = if dbuuids.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(dbuuids)
                    .map_err(|e| AppError::from(crate::ledger::StorageError::failed(e)))?,
            )
        };
        let name = crate::ledger::text::operator_name("secret", name).map_err(AppError::Invalid)?;
        let secret = format!("iapreg_{}", random_hex(24));
        let hash = sha256_hex(&secret);
        let now = self.now().micros();
        write_tx!(self, |c| {
            diesel::insert_into(registration_secrets::table)
                .values((
                    registration_secrets::name.eq(name),
                    registration_secrets::secret_hash.eq(&hash),
                    registration_secrets::created_at.eq(now),
                    registration_secrets::dbuuids.eq(&scope),
                ))
                .execute(c)
                .map_err(|e| match e {
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    ) => AppError::Conflict(format!("registration secret {name:?}")),
                    other => other.into(),
                })
        })?;
        Ok(secret)
    }

    /// Whether `secret` is a live registration secret that may register `dbuuid`.
    pub fn verify_registration_secret(&self, secret: &str, dbuuid: &str) -> Result<bool, AppError> {
        let hash = sha256_hex(secret);
        let found: Option<(String, Option<String>)> = read_tx!(self, |c| {
            registration_secrets::table
                .filter(registration_secrets::secret_hash.eq(&hash))
                .filter(registration_secrets::revoked_at.is_null())
                .select((
                    registration_secrets::secret_hash,
                    registration_secrets::dbuuids,
                ))
                .first::<(String, Option<String>)>(c)
                .optional()
        })?;
        let Some((stored, scope)) = found else {
            return Ok(false);
        };
        let in_scope = match parse_scope(scope)? {
            None => true,
            Some(list) => list.iter().any(|d| d == dbuuid),
        };
        Ok(constant_time_eq(&stored, &hash) && in_scope)
    }

    /// Every registration secret, revoked ones too, by name.
    pub fn list_registration_secrets(&self) -> Result<Vec<RegistrationSecretInfo>, AppError> {
        type Row = (String, i64, Option<String>, Option<i64>);
        let rows: Vec<Row> = read_tx!(self, |c| {
            registration_secrets::table
                .order(registration_secrets::name)
                .select((
                    registration_secrets::name,
                    registration_secrets::created_at,
                    registration_secrets::dbuuids,
                    registration_secrets::revoked_at,
                ))
                .load::<Row>(c)
        })?;
        rows.into_iter()
            .map(|(name, created_at, scope, revoked_at)| {
                Ok(RegistrationSecretInfo {
                    name,
                    created_at: Timestamp::from_micros(created_at),
                    dbuuids: parse_scope(scope)?,
                    revoked_at: revoked_at.map(Timestamp::from_micros),
                })
            })
            .collect()
    }

    /// Revokes the registration secret `name`: it registers no database from now on.
    /// Databases it registered keep their registration and database token (they
    /// authenticate with that token, not with the secret). Revoking twice changes nothing.
    pub fn revoke_registration_secret(&self, name: &str) -> Result<Revocation, AppError> {
        let now = self.now().micros();
        write_tx!(self, |c| {
            let revoked_at: Option<Option<i64>> = registration_secrets::table
                .filter(registration_secrets::name.eq(name))
                .select(registration_secrets::revoked_at)
                .first::<Option<i64>>(c)
                .optional()?;
            match revoked_at {
                None => Ok(Revocation::Unknown),
                Some(Some(at)) => Ok(Revocation::AlreadyRevoked(Timestamp::from_micros(at))),
                Some(None) => {
                    diesel::update(
                        registration_secrets::table
                            .filter(registration_secrets::name.eq(name))
                            .filter(registration_secrets::revoked_at.is_null()),
                    )
                    .set(registration_secrets::revoked_at.eq(now))
                    .execute(c)?;
                    Ok::<_, AppError>(Revocation::Revoked)
                }
            }
        })
    }
}
