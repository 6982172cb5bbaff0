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

/// Hex digits of the creation time that open a transaction token (microseconds; 14
/// digits last until the year 4253).
const TRANSACTION_TIME_DIGITS: usize = 14;
/// Random bytes after them.
const TRANSACTION_SECRET_BYTES: usize = 20;
const TRANSACTION_TOKEN_LEN: usize = TRANSACTION_TIME_DIGITS + 2 * TRANSACTION_SECRET_BYTES;

/// A new transaction token (what authorize answers) and the key the store keeps for it.
///
/// The token opens with its creation time, and so does the key (then the token's
/// SHA-256): keys made one after another sit side by side in the index that finds them,
/// so a new one lands on the same few pages instead of a random page of an index as
/// large as every hold ever made. The secret is the random part; the time is not.
pub fn new_transaction_token(now_micros: i64) -> (String, String) {
    let token = format!(
        "{:0width$x}{}",
        now_micros.max(0),
        random_hex(TRANSACTION_SECRET_BYTES),
        width = TRANSACTION_TIME_DIGITS
    );
    let key = transaction_key(&token);
    (token, key)
}

/// The stored key of a transaction token as a client sent it back. Tokens without the
/// time (40 hex digits, made before it was added) are kept under their SHA-256 alone.
pub fn transaction_key(token: &str) -> String {
    match token.get(..TRANSACTION_TIME_DIGITS) {
        Some(time)
            if token.len() == TRANSACTION_TOKEN_LEN
                && token.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("{time}{}", sha256_hex(token))
        }
        _ => sha256_hex(token),
    }
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
    fn transaction_keys_follow_creation_time() {
        let (early, early_key) = new_transaction_token(1_000_000);
        let (late, late_key) = new_transaction_token(2_000_000);
        assert_eq!(early.len(), TRANSACTION_TOKEN_LEN);
        assert!(early.starts_with("000000000f4240"), "{early}");
        assert!(early_key < late_key);
        assert_eq!(transaction_key(&early), early_key);
        assert_eq!(transaction_key(&late), late_key);
        assert_eq!(early_key, format!("000000000f4240{}", sha256_hex(&early)));
        // Older tokens: the hash alone, as they were stored.
        let old = random_hex(20);
        assert_eq!(transaction_key(&old), sha256_hex(&old));
        // Same length as a new token but not hex: the hash alone.
        let odd = format!("zz{}", &early[2..]);
        assert_eq!(transaction_key(&odd), sha256_hex(&odd));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
