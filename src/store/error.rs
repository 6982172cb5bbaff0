//! Database errors turned into the errors the rest of the crate knows: the ledger's
//! [`StorageError`] keeps the diesel error as its cause, so nothing outside `store`
//! names diesel.

use crate::error::AppError;
use crate::ledger::{LedgerError, StorageError};
use crate::payments::PaymentError;

impl From<diesel::result::Error> for StorageError {
    /// Lock time-outs and serialization failures are worth a retry: "unavailable".
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        let retry = match &e {
            Error::NotFound => return StorageError::NotFound(e.into()),
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
            // A lost connection (PostgreSQL stopped or the backend terminated): the
            // database is away, not broken.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => true,
            Error::DatabaseError(_, info) => {
                let message = info.message();
                message.contains("database is locked")
                    || message.contains("database table is locked")
                    || message.contains("database or disk is full")
                    || message.contains("terminating connection")
                    || message.contains("server closed the connection")
                    || message.contains("no connection to the server")
            }
            _ => false,
        };
        if retry {
            StorageError::Unavailable(e.into())
        } else {
            StorageError::Failed(e.into())
        }
    }
}

impl From<diesel::result::Error> for LedgerError {
    fn from(e: diesel::result::Error) -> Self {
        LedgerError::Storage(e.into())
    }
}

impl From<diesel::result::Error> for PaymentError {
    fn from(e: diesel::result::Error) -> Self {
        PaymentError::Ledger(e.into())
    }
}

impl From<StorageError> for PaymentError {
    fn from(e: StorageError) -> Self {
        PaymentError::Ledger(e.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Storage(e.into())
    }
}

/// No pooled connection before the pool's time-out: the database is away or saturated.
pub(crate) fn unavailable(e: r2d2::Error) -> StorageError {
    StorageError::Unavailable(e.into())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    /// The diesel error is the source of the storage error, which is the source of nothing
    /// beyond the driver: a log line can print the whole chain.
    fn reaches_diesel(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(e);
        while let Some(e) = next {
            if e.downcast_ref::<DieselError>().is_some() {
                return true;
            }
            next = e.source();
        }
        false
    }

    #[test]
    fn serialization_failure_is_unavailable_and_keeps_its_cause() {
        let e = StorageError::from(database_error(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update",
        ));
        assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
        assert_eq!(e.code(), "unavailable");
        let source = e.source().expect("the diesel error is kept as the source");
        assert!(source.downcast_ref::<DieselError>().is_some(), "{source:?}");
        assert!(e.to_string().contains("could not serialize access"), "{e}");
    }

    #[test]
    fn locked_sqlite_and_lost_connections_are_unavailable() {
        for e in [
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
            database_error(DatabaseErrorKind::Unknown, "database or disk is full"),
            database_error(DatabaseErrorKind::ClosedConnection, "gone"),
            database_error(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
        ] {
            let e = LedgerError::from(e);
            assert!(e.is_unavailable(), "{e:?}");
            assert_eq!(e.code(), "unavailable");
        }
    }

    #[test]
    fn other_database_errors_fail_and_keep_their_cause() {
        let e = LedgerError::from(database_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key",
        ));
        assert!(
            matches!(e, LedgerError::Storage(StorageError::Failed(_))),
            "{e:?}"
        );
        assert_eq!(e.code(), "storage_error");
        assert!(!e.is_unavailable());
        let storage = match &e {
            LedgerError::Storage(s) => s,
            other => panic!("{other:?}"),
        };
        assert!(reaches_diesel(storage));
    }

    #[test]
    fn a_missing_account_row_is_an_unknown_account() {
        assert!(matches!(
            LedgerError::unknown_if_missing(DieselError::NotFound.into()),
            LedgerError::UnknownAccount
        ));
        assert!(matches!(
            StorageError::from(DieselError::NotFound),
            StorageError::NotFound(_)
        ));
        let payment = PaymentError::from(database_error(
            DatabaseErrorKind::SerializationFailure,
            "retry",
        ));
        assert_eq!(payment.code(), "unavailable");
    }
}
