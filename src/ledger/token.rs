//! Secrets: generation, hashing for storage, constant-time comparison.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh random secret of `bytes` bytes, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS generator failing is not recoverable: no secret may be made without it.
    getrandom::fill(&mut buf).expect("operating system random generator unavailable");
    hex::encode(buf)
}

/// SHA-256 hex of a secret: what the store keeps instead of the secret.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equal-length constant-time comparison of two stored hashes or secrets.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// An Odoo account token as the client sent it.
///
/// Odoo appends `+disabled` (or another `+suffix`) to disable an account; the account is
/// the same, identified by `sha1(token without suffix)` as Odoo 19 sends it (`hashed=1`).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountToken {
    sha1_hex: String,
    disabled: bool,
}

impl AccountToken {
    /// From the raw token (Odoo 16–18, provider calls).
    pub fn from_raw(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (base, suffix) = match raw.split_once('+') {
            Some((b, s)) => (b, Some(s)),
            None => (raw, None),
        };
        if base.is_empty() || base.len() > 128 {
            return None;
        }
        Some(AccountToken {
            sha1_hex: hex::encode(Sha1::digest(base.as_bytes())),
            disabled: suffix.is_some_and(|s| s == "disabled"),
        })
    }

    /// From `sha1(token)` hex (Odoo 19 `hashed=1`).
    pub fn from_sha1_hex(hash: &str) -> Option<Self> {
        let hash = hash.trim().to_ascii_lowercase();
        (hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(AccountToken {
            sha1_hex: hash,
            disabled: false,
        })
    }

    pub fn sha1_hex(&self) -> &str {
        &self.sha1_hex
    }

    /// What the store keeps: a hash of the sha1, since the sha1 itself opens the portal.
    pub fn storage_hash(&self) -> String {
        sha256_hex(&self.sha1_hex)
    }

    /// A few characters to recognise the account in listings without revealing it.
    pub fn hint(&self) -> String {
        self.sha1_hex[..8].to_owned()
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled
    }
}

impl std::fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountToken({}…)", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_stripped_and_marks_disabled() {
        let plain = AccountToken::from_raw("abc").expect("token");
        let disabled = AccountToken::from_raw("abc+disabled").expect("token");
        assert_eq!(plain.storage_hash(), disabled.storage_hash());
        assert!(disabled.is_disabled());
        assert!(!plain.is_disabled());
        let hashed = AccountToken::from_sha1_hex(plain.sha1_hex()).expect("hash");
        assert_eq!(hashed.storage_hash(), plain.storage_hash());
        assert_eq!(plain.sha1_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn empty_and_malformed_tokens_are_refused() {
        assert!(AccountToken::from_raw("").is_none());
        assert!(AccountToken::from_raw("+disabled").is_none());
        assert!(AccountToken::from_sha1_hex("xyz").is_none());
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
