//! Idempotency keys: the first answer to a write, kept under the key its client chose, so
//! a retry is answered the same without writing twice.

use super::schema::idempotency_keys;
use crate::ledger::{LedgerError, StorageError, Timestamp};
use diesel::prelude::*;

/// A client-chosen key that makes a write safe to retry.
#[derive(Clone, Debug)]
pub struct Idempotency<'a> {
    /// Whose keys these are (e.g. the admin token's name): keys never collide across.
    pub scope: &'a str,
    pub key: &'a str,
    /// Hash of the request body: the same key with another body is refused.
    pub request_hash: String,
}

/// The key table, read and written inside the caller's transaction (the write's own).
pub(super) trait IdempotencyKeys {
    /// The request hash and answer stored under `(scope, key)`.
    fn find_key(&mut self, scope: &str, key: &str) -> QueryResult<Option<(String, String)>>;
    fn insert_key(
        &mut self,
        idem: &Idempotency<'_>,
        response: &str,
        at: Timestamp,
    ) -> QueryResult<usize>;
}

macro_rules! idempotency_keys_for {
    ($conn:ty) => {
        impl IdempotencyKeys for $conn {
            fn find_key(
                &mut self,
                scope: &str,
                key: &str,
            ) -> QueryResult<Option<(String, String)>> {
                idempotency_keys::table
                    .filter(idempotency_keys::scope.eq(scope))
                    .filter(idempotency_keys::key.eq(key))
                    .select((idempotency_keys::request_hash, idempotency_keys::response))
                    .first(self)
                    .optional()
            }

            fn insert_key(
                &mut self,
                idem: &Idempotency<'_>,
                response: &str,
                at: Timestamp,
            ) -> QueryResult<usize> {
                diesel::insert_into(idempotency_keys::table)
                    .values((
                        idempotency_keys::scope.eq(idem.scope),
                        idempotency_keys::key.eq(idem.key),
                        idempotency_keys::request_hash.eq(&idem.request_hash),
                        idempotency_keys::response.eq(response),
                        idempotency_keys::created_at.eq(at.micros()),
                    ))
                    .execute(self)
            }
        }
    };
}

idempotency_keys_for!(diesel::SqliteConnection);

idempotency_keys_for!(diesel::PgConnection);

/// The answer stored under `idem`'s key, if any. The same key with another request is
/// refused rather than answered: the client reused a key by mistake. Call it after locking
/// what the write changes, so a concurrent retry waits and then finds the answer.
pub(super) fn stored_answer(
    c: &mut impl IdempotencyKeys,
    idem: &Idempotency<'_>,
) -> Result<Option<serde_json::Value>, LedgerError> {
    let Some((hash, response)) = c.find_key(idem.scope, idem.key)? else {
        return Ok(None);
    };
    if hash != idem.request_hash {
        return Err(LedgerError::IdempotencyMismatch);
    }
    serde_json::from_str(&response)
        .map(Some)
        .map_err(|e| LedgerError::from(StorageError::failed(e)))
}

/// Keeps `answer` as the one every retry with `idem`'s key gets.
pub(super) fn remember_answer(
    c: &mut impl IdempotencyKeys,
    idem: &Idempotency<'_>,
    answer: &serde_json::Value,
    at: Timestamp,
) -> Result<(), LedgerError> {
    c.insert_key(idem, &answer.to_string(), at)?;
    Ok(())
}
