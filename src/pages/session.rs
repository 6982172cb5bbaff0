//! Signed cookies: the customer's session (which accounts it may see), the provider's
//! session, and the CSRF tokens derived from them.
//!
//! A cookie value is `<hex payload>.<hex HMAC-SHA256>`; the MAC covers a purpose prefix
//! and the payload, so a value made for one purpose (a provider session, a CSRF token)
//! never verifies as another. Nothing secret is in the payload (account ids, the
//! database, an expiry), so it is signed, not encrypted.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ledger::token::{constant_time_eq, random_hex};
use crate::ledger::{AccountId, ServiceId, Timestamp};

/// Customer session cookie.
pub const SESSION_COOKIE: &str = "iap_portal";
/// Provider session cookie.
pub const PROVIDER_COOKIE: &str = "iap_provider";
/// Anonymous nonce behind the provider login form's CSRF token.
pub const LOGIN_COOKIE: &str = "iap_login";
/// Chosen language (not signed: it only picks texts).
pub const LANG_COOKIE: &str = "iap_lang";

/// A session may see at most this many accounts (cookies stay small).
pub const MAX_ACCOUNTS: usize = 100;

/// The portal's signing key.
#[derive(Clone)]
pub struct Keys {
    key: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// What a customer session grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Accounts the session may see.
    #[serde(rename = "a")]
    pub accounts: Vec<AccountId>,
    /// The Odoo database the link came from.
    #[serde(rename = "d")]
    pub dbuuid: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// Random per session: CSRF tokens derive from it.
    #[serde(rename = "n")]
    pub nonce: String,
}

/// What a provider session grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSession {
    #[serde(rename = "s")]
    pub service_id: ServiceId,
    /// The start of the service key's stored hash: rotating the key ends the session.
    #[serde(rename = "k")]
    pub key_fingerprint: String,
    #[serde(rename = "e")]
    pub expires: i64,
    #[serde(rename = "n")]
    pub nonce: String,
}

/// What the link in a low-credit alert e-mail grants: the portal of one account, until
/// `expires` (Unix seconds). Signed, so nothing stored opens the portal: the sidecar
/// keeps only a hash of `sha1(token)`, which Odoo's own links carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertLink {
    #[serde(rename = "a")]
    pub account: AccountId,
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Length of the key-hash prefix kept in a provider session.
const FINGERPRINT_LEN: usize = 16;

impl ProviderSession {
    pub fn new(service_id: ServiceId, key_hash: &str, expires: i64) -> ProviderSession {
        ProviderSession {
            service_id,
            key_fingerprint: key_hash.chars().take(FINGERPRINT_LEN).collect(),
            expires,
            nonce: random_hex(16),
        }
    }

    /// Whether the service still has the key this session was opened with.
    pub fn matches_key(&self, key_hash: &str) -> bool {
        let current: String = key_hash.chars().take(FINGERPRINT_LEN).collect();
        constant_time_eq(&current, &self.key_fingerprint)
    }
}

impl Session {
    pub fn new(accounts: Vec<AccountId>, dbuuid: Option<String>, expires: i64) -> Session {
        Session {
            accounts,
            dbuuid,
            expires,
            nonce: random_hex(16),
        }
    }

    pub fn allows(&self, account_id: AccountId) -> bool {
        self.accounts.contains(&account_id)
    }

    /// This session widened by `accounts` (a second link from the same database), or a
    /// new one when it belongs to another database.
    pub fn merged(
        previous: Option<Session>,
        accounts: &[AccountId],
        dbuuid: Option<String>,
        expires: i64,
    ) -> Session {
        let mut ids: Vec<AccountId> = match previous {
            Some(p) if p.dbuuid == dbuuid => p.accounts,
            _ => Vec::new(),
        };
        for id in accounts {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        // The newest links matter most: drop the oldest when over the limit.
        if ids.len() > MAX_ACCOUNTS {
            ids.drain(..ids.len() - MAX_ACCOUNTS);
        }
        Session::new(ids, dbuuid, expires)
    }
}

impl Keys {
    /// The portal's keys: `portal.session_secret`, or else the random key made once and
    /// kept in the database (blocking).
    pub fn load(
        settings: &crate::config::PortalSettings,
        store: &crate::store::Store,
    ) -> Result<Keys, crate::error::AppError> {
        match &settings.session_secret {
            Some(secret) => Ok(Keys::new(secret.expose())),
            None => Ok(Keys::new(&store.portal_secret("session")?)),
        }
    }

    /// Keys from a configured or stored secret.
    pub fn new(secret: &str) -> Keys {
        Keys {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac
    }

    fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        // Serialising these plain structs cannot fail.
        let payload = hex::encode(serde_json::to_vec(value).unwrap_or_default());
        let tag = hex::encode(
            self.mac(purpose, payload.as_bytes())
                .finalize()
                .into_bytes(),
        );
        format!("{payload}.{tag}")
    }

    fn open<T: for<'de> Deserialize<'de>>(&self, purpose: &str, cookie: &str) -> Option<T> {
        let (payload, tag) = cookie.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        // Constant-time comparison of the tag.
        self.mac(purpose, payload.as_bytes())
            .verify_slice(&tag)
            .ok()?;
        serde_json::from_slice(&hex::decode(payload).ok()?).ok()
    }

    pub fn seal_session(&self, session: &Session) -> String {
        self.seal("session", session)
    }

    /// The session in `cookie` if it is authentic and not expired at `now`.
    pub fn open_session(&self, cookie: &str, now: Timestamp) -> Option<Session> {
        self.open::<Session>("session", cookie)
            .filter(|s| s.expires > now.micros() / 1_000_000 && s.accounts.len() <= MAX_ACCOUNTS)
    }

    pub fn seal_provider(&self, session: &ProviderSession) -> String {
        self.seal("provider", session)
    }

    pub fn open_provider(&self, cookie: &str, now: Timestamp) -> Option<ProviderSession> {
        self.open::<ProviderSession>("provider", cookie)
            .filter(|s| s.expires > now.micros() / 1_000_000)
    }

    pub fn seal_alert_link(&self, link: &AlertLink) -> String {
        self.seal("alert-link", link)
    }

    /// The alert link in `value` if it is authentic and not expired at `now`.
    pub fn open_alert_link(&self, value: &str, now: Timestamp) -> Option<AlertLink> {
        self.open::<AlertLink>("alert-link", value)
            .filter(|l| l.expires > now.micros() / 1_000_000)
    }

    /// The CSRF token of forms shown under a session with `nonce`.
    pub fn csrf_token(&self, nonce: &str) -> String {
        let tag = self.mac("csrf", nonce.as_bytes()).finalize().into_bytes();
        hex::encode(&tag[..16])
    }

    /// Whether `given` is the CSRF token of the session with `nonce` (constant time).
    pub fn csrf_ok(&self, nonce: &str, given: Option<&str>) -> bool {
        given.is_some_and(|g| constant_time_eq(&self.csrf_token(nonce), g))
    }
}

/// One `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on an https origin.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age_secs.max(0),
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a `Cookie` header (RFC 6265 `name=value; ...`).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(ids: &[i64]) -> Vec<AccountId> {
        ids.iter().copied().map(AccountId::from_stored).collect()
    }

    fn keys() -> Keys {
        Keys::new("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn sessions_round_trip_and_refuse_tampering() {
        let k = keys();
        let s = Session::new(accounts(&[1, 2]), Some("db".into()), 2_000);
        let cookie = k.seal_session(&s);
        let now = Timestamp::from_micros(1_000 * 1_000_000);
        assert_eq!(k.open_session(&cookie, now), Some(s.clone()));
        // Expired.
        assert_eq!(
            k.open_session(&cookie, Timestamp::from_micros(2_000 * 1_000_000)),
            None
        );
        // Another key.
        assert_eq!(
            Keys::new("another key of 32 characters....").open_session(&cookie, now),
            None
        );
        // A payload widened to account 3 with the old tag.
        let (_, tag) = cookie.split_once('.').expect("dot");
        let forged = Session {
            accounts: accounts(&[1, 2, 3]),
            ..s
        };
        let payload = hex::encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(k.open_session(&format!("{payload}.{tag}"), now), None);
        // A provider cookie is not a customer session.
        let p = k.seal_provider(&ProviderSession::new(
            ServiceId::from_stored(1),
            "abcdef",
            2_000,
        ));
        assert_eq!(k.open_session(&p, now), None);
        assert_eq!(k.open_session("garbage", now), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let k = keys();
        let t = k.csrf_token("n1");
        assert!(k.csrf_ok("n1", Some(&t)));
        assert!(!k.csrf_ok("n2", Some(&t)));
        assert!(!k.csrf_ok("n1", None));
        assert!(!k.csrf_ok("n1", Some("")));
    }

    #[test]
    fn merging_keeps_the_same_database_only() {
        let a = Session::new(accounts(&[1]), Some("db1".into()), 10);
        let m = Session::merged(Some(a.clone()), &accounts(&[2]), Some("db1".into()), 20);
        assert_eq!(m.accounts, accounts(&[1, 2]));
        assert_ne!(m.nonce, a.nonce);
        let other = Session::merged(Some(a), &accounts(&[3]), Some("db2".into()), 20);
        assert_eq!(other.accounts, accounts(&[3]));
    }

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(
            cookie_value("a=1; iap_portal=xyz; b=2", "iap_portal"),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", "iap_portal"), None);
        assert_eq!(cookie_value("iap_portal_x=1", "iap_portal"), None);
    }
}
