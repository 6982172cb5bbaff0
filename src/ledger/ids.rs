//! Typed ids: one type per kind of record, so an account's id passed where a hold's is
//! wanted is a compile error rather than a wrong row.
//!
//! Every id is the 64-bit integer both databases store. Only the store turns numbers into
//! ids and back (`from_stored`, `stored`, in `store/rows.rs`); faces parse the ids they
//! read from a URL, a form or an argument once (`FromStr`, `new`); everyone else passes
//! them along and prints them (`Display` is the bare number, as in URLs, logs, pages and
//! CSV; JSON carries the bare number too).

use std::fmt;

/// Why a text is not an id: not a whole number, or not above zero (no table hands out
/// zero or a negative id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id is a whole number above zero")
    }
}

impl std::error::Error for InvalidId {}

/// Declares an id type: serialized as the bare number (`#[serde(transparent)]`), shown as
/// the bare number, parsed from text by faces, converted by the store.
macro_rules! entity_id {
    ($(#[$meta:meta])* $vis:vis $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        $vis struct $name(i64);

        impl $name {
            /// The id a caller named (a path segment, a form field, an argument read as a
            /// number); `None` when no row can have it.
            pub fn new(number: i64) -> Option<Self> {
                (number > 0).then_some(Self(number))
            }

            /// The id of a row as the database stores it: for the store only.
            pub const fn from_stored(stored: i64) -> Self {
                Self(stored)
            }

            /// The number the database stores: for the store, and for a wire format
            /// that is made of it (SMPP's reference byte).
            pub const fn stored(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ledger::ids::InvalidId;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse::<i64>()
                    .ok()
                    .and_then(Self::new)
                    .ok_or($crate::ledger::ids::InvalidId)
            }
        }
    };
}
pub(crate) use entity_id;

entity_id! {
    /// A service sold for credits.
    pub ServiceId
}

entity_id! {
    /// An account: one per (service, account token).
    pub AccountId
}

entity_id! {
    /// A lot: credits that entered an account together.
    pub LotId
}

entity_id! {
    /// A hold: credits reserved for a provider.
    pub HoldId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_serialize_as_the_bare_number() {
        let id = AccountId::from_stored(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(format!("/accounts/{id}"), "/accounts/42");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("42"));
        assert_eq!(serde_json::from_str::<AccountId>("42").ok(), Some(id));
        assert_eq!(id.stored(), 42);
    }

    #[test]
    fn faces_parse_positive_whole_numbers_only() {
        assert_eq!("7".parse::<HoldId>(), Ok(HoldId::from_stored(7)));
        for bad in ["0", "-3", "x", "", "1.5", " 7"] {
            assert_eq!(bad.parse::<HoldId>(), Err(InvalidId), "{bad:?}");
        }
        assert_eq!(LotId::new(0), None);
        assert_eq!(LotId::new(9), Some(LotId::from_stored(9)));
    }
}
