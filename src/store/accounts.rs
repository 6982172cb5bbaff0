//! Writes to an `accounts` row. The ledger engine keeps accounts in memory and trusts
//! what it holds while the row's `lock_version` is the one it read, so every write to the
//! row goes through [`update_account`], which bumps it: no writer can forget to tell the
//! engine. (The one exception is PostgreSQL's batch write, `iap_engine_write`, which sets
//! the version the engine computed after checking the one it read, in the same statement.)

use diesel::dsl::{Add, Eq, Update};
use diesel::prelude::*;
use diesel::query_builder::{AsChangeset, AsQuery, IntoUpdateTarget};

use super::schema::accounts;

/// The version bump every account write carries.
type Bump = Eq<accounts::lock_version, Add<accounts::lock_version, i64>>;

/// No column but the version, for a write that is there to take the row lock (see
/// `HoldRepo::lock_account`).
pub(crate) const NO_CHANGE: Option<Bump> = None;

/// The UPDATE of the accounts `target` selects that sets `changes` and bumps their
/// `lock_version`. It is built here and run by the caller (`execute`, or `returning` for
/// the row), so one function serves both backends' connections.
pub(crate) fn update_account<T, Ch>(target: T, changes: Ch) -> Update<T, (Ch, Bump)>
where
    T: IntoUpdateTarget<Table = accounts::table>,
    Ch: AsChangeset<Target = accounts::table>,
    Update<T, (Ch, Bump)>: AsQuery,
{
    diesel::update(target).set((
        changes,
        accounts::lock_version.eq(accounts::lock_version + 1),
    ))
}
