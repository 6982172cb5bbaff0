//! Provider keys: generated here, stored hashed, shown once.

use crate::error::AppError;
use crate::ledger::Service;
use crate::ledger::token::{random_hex, sha256_hex};
use crate::store::{AuditRecord, NewService, Store};

fn new_key() -> String {
    format!("iapkey_{}", random_hex(24))
}

/// Registers a service; returns it with its key.
pub fn create(store: &Store, new: &NewService) -> Result<(Service, String), AppError> {
    let key = new_key();
    let service = store.create_service(new, &sha256_hex(&key))?;
    Ok((service, key))
}

/// Gives a service a new key; returns it with the key.
pub fn rotate(store: &Store, name: &str) -> Result<(Service, String), AppError> {
    let key = new_key();
    let service = store.set_service_key(name, &sha256_hex(&key))?;
    Ok((service, key))
}

/// [`create`] by an operator, audited in the same transaction.
pub fn create_audited(
    store: &Store,
    new: &NewService,
    audit: &AuditRecord,
) -> Result<(Service, String), AppError> {
    let key = new_key();
    let service = store.create_service_audited(new, &sha256_hex(&key), audit)?;
    Ok((service, key))
}

/// [`rotate`] by an operator, audited in the same transaction.
pub fn rotate_audited(
    store: &Store,
    name: &str,
    audit: &AuditRecord,
) -> Result<(Service, String), AppError> {
    let key = new_key();
    let service = store.set_service_key_audited(name, &sha256_hex(&key), audit)?;
    Ok((service, key))
}
