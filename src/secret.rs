//! Values that must never reach a log or a terminal (passwords, keys, URLs with
//! credentials): a leaf room, so settings and the adapters that read them share it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never reach a log or a terminal.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
