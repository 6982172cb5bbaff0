//! Settings: built-in defaults, then an optional TOML file (`--config PATH` or
//! `IAP_SIDECAR_CONFIG`), then environment variables `IAP_SIDECAR__SECTION__KEY`.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::secret::Secret;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub ledger: LedgerSettings,
    pub smtp: SmtpSettings,
    pub alerts: AlertSettings,
    pub odoo: OdooSettings,
    pub portal: PortalSettings,
    pub payments: PaymentSettings,
    pub log: LogSettings,
    pub limits: LimitSettings,
    pub sms: SmsSettings,
}

/// What callers holding no key can cause: requests per client address, accounts per
/// database.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Requests per second each client address may make to the routes that need no key
    /// (Odoo's balance and account routes, the portal's entry links), on average.
    pub unauthenticated_per_second: f64,
    /// How many of those requests one address may make at once before the average applies.
    pub unauthenticated_burst: u32,
    /// Accounts a provider's calls may open for one database (operators are not limited).
    pub accounts_per_database: u32,
    /// Reverse proxies in front of the sidecar: for a request from one of these addresses,
    /// the client is the last `X-Forwarded-For` address that is not a listed proxy.
    /// Empty (the default): the peer address is the client, whatever the headers say.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            unauthenticated_per_second: 20.0,
            unauthenticated_burst: 200,
            accounts_per_database: 200,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How the sidecar reads registered Odoo databases.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdooSettings {
    /// Seconds before a JSON-RPC call to Odoo gives up.
    pub timeout_secs: u64,
    /// How often registered databases are read again (companies, IAP accounts).
    pub refresh_interval_secs: u64,
    /// Hosts (names or IP addresses, as in the registered URL) the bridge may call
    /// although they are or resolve to loopback, private, link-local or unspecified
    /// addresses; every other such target is refused.
    pub allowed_hosts: Vec<String>,
}

impl Default for OdooSettings {
    fn default() -> Self {
        OdooSettings {
            timeout_secs: 15,
            refresh_interval_secs: 3600,
            allowed_hosts: Vec::new(),
        }
    }
}

/// The customer portal's sessions.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSettings {
    /// Key signing session cookies and CSRF tokens (at least 32 characters). Without
    /// one, a random key is generated once and kept in the database, shared by replicas.
    pub session_secret: Option<Secret>,
    /// How long a portal session lasts after the link from Odoo was opened.
    pub session_ttl_hours: u64,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            session_secret: None,
            session_ttl_hours: 12,
        }
    }
}

/// How payments reach the sidecar.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSettings {
    /// Shared secret of the payment webhook (HMAC-SHA256, at least 16 characters);
    /// without one the webhook answers 503.
    pub webhook_secret: Option<Secret>,
    /// Webhook requests whose timestamp is further than this from now are refused.
    pub webhook_tolerance_secs: i64,
    /// Where the order page's "Pay" button leads, with `{order}`, `{reference}`,
    /// `{amount_minor}`, `{amount}` and `{currency}` replaced; none: no button.
    pub checkout_url: Option<String>,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            webhook_secret: None,
            webhook_tolerance_secs: 300,
            checkout_url: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub bind: String,
    /// Public origin of this sidecar (what Odoo and browsers reach), e.g.
    /// `https://iap.example.org`. Defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// Seconds given to in-flight requests at shutdown.
    pub shutdown_timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (embedded) or `postgres://user:pass@host/db`.
    pub url: Secret,
    pub pool_size: u32,
    /// Seconds to wait for a free connection before answering "unavailable".
    pub pool_timeout_secs: u64,
    /// SQLite: how long a writer waits for the lock, in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
    /// SQLite `synchronous` pragma: `full` (durable at each commit) or `normal`.
    pub sqlite_synchronous: String,
    /// SQLite: WAL pages (4 KiB) after which a commit copies the WAL back into the
    /// database file itself (SQLite's default is 1000). The ledger engine has a
    /// background thread do it much sooner; this is the safety net.
    pub sqlite_wal_autocheckpoint: u32,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// How long provider calls may reuse a service key, account or database-access
    /// lookup, in milliseconds (0: never). Changes made through this process apply at
    /// once; changes made by another process on the same database within this time.
    pub lookup_cache_ms: u64,
    /// How long an authorize, capture or cancel may wait for the ledger, in milliseconds:
    /// a call not written by then is refused and never applied afterwards. Below Odoo's
    /// 15 s client timeout, so Odoo hears the refusal instead of timing out.
    pub call_deadline_ms: u64,
    /// How long `/health` waits for the database before answering 503, in milliseconds.
    pub health_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSettings {
    /// Longest hold a provider may ask for, in hours (Odoo's default request is 4320).
    pub max_hold_ttl_hours: i64,
    /// How often expired holds and lots are closed in the background, in seconds.
    pub sweep_interval_secs: u64,
}

/// The mail server low-credit alerts go through.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Mail server host; without one, alerts wait in the outbox.
    pub host: Option<String>,
    pub port: u16,
    /// `starttls` (upgrade a plain connection), `tls` (TLS from the start) or `none`.
    pub security: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Sender address, e.g. `IAP <iap@example.org>`.
    pub from: String,
    pub timeout_secs: u64,
}

/// How the alert worker drains the outbox.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Run the worker in this process.
    pub worker: bool,
    /// Seconds between two looks at the outbox when nothing wakes the worker earlier.
    pub poll_interval_secs: u64,
    /// First retry delay; doubled per attempt (with jitter) up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// How long a claimed alert belongs to one worker before another may retry it.
    pub lease_secs: u64,
    /// Alerts sent per round.
    pub batch: i64,
}

/// Odoo's own SMS through the operator's gateway (README, "SMS").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// The gateway that sends, a name under `gateways`. Without one the SMS routes answer
    /// every message `server_error` and nothing is charged.
    pub gateway: Option<String>,
    /// `[sms.gateways.NAME]`, each with a `kind` (`twilio`, `smpp`, `webhook`).
    pub gateways: std::collections::BTreeMap<String, crate::sms::gateway::GatewaySettings>,
    /// The IAP service SMS are paid on (created on first use, like any service).
    pub service: String,
    /// Credits per segment, by country calling code (`"32"`, `"1"`, `"44"`); `"*"` prices
    /// every other country. A number whose country has no price is refused
    /// (`country_not_supported`) and costs nothing.
    pub prices: std::collections::BTreeMap<String, String>,
    /// Accounts must complete Odoo's registration (18/19: phone, code, sender) before
    /// their messages go out; until then they are answered `unregistered`. Odoo 17 has no
    /// registration wizard, so leave this off for 17 databases.
    pub require_registration: bool,
    /// Most numbers one send call may carry (Odoo sends at most 500).
    pub max_batch: usize,
    /// Run the outbox worker (sending, delivery reports) in this process.
    pub worker: bool,
    /// Seconds between two looks at the outbox when nothing wakes the worker earlier.
    pub poll_interval_secs: u64,
    /// First retry delay; doubled per attempt (with jitter) up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// A message the gateway has not taken within this many hours fails as `expired` and
    /// its credits are given back (at most `ledger.max_hold_ttl_hours`: the credits are
    /// held meanwhile).
    pub give_up_hours: i64,
    /// Messages sent per round.
    pub batch: i64,
    /// How long a claimed message belongs to one worker before another may retry it.
    pub lease_secs: u64,
    /// Seconds before one gateway call gives up (then retried).
    pub submit_timeout_secs: u64,
    /// The verification text sent at registration; `{code}` is replaced by the code.
    pub verification_text: String,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            gateway: None,
            gateways: std::collections::BTreeMap::new(),
            service: "sms".into(),
            prices: std::collections::BTreeMap::new(),
            require_registration: false,
            max_batch: 1000,
            worker: true,
            poll_interval_secs: 5,
            retry_base_secs: 5,
            retry_max_secs: 300,
            give_up_hours: 24,
            batch: 50,
            lease_secs: 60,
            submit_timeout_secs: 15,
            verification_text: "Your SMS account verification code: {code}".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `iap_sidecar=debug,actix_web=info`.
    pub level: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind: "127.0.0.1:8070".into(),
            public_url: None,
            max_body_bytes: 256 * 1024,
            workers: None,
            shutdown_timeout_secs: 30,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: Secret::new("sqlite://iap-sidecar.db"),
            pool_size: 16,
            pool_timeout_secs: 10,
            sqlite_busy_timeout_ms: 5_000,
            sqlite_synchronous: "full".into(),
            sqlite_wal_autocheckpoint: 10_000,
            migrate_on_start: true,
            lookup_cache_ms: 2_000,
            call_deadline_ms: 10_000,
            health_timeout_ms: 2_000,
        }
    }
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            max_hold_ttl_hours: 4320,
            sweep_interval_secs: 60,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: None,
            port: 587,
            security: "starttls".into(),
            username: None,
            password: None,
            from: "iap-sidecar <iap-sidecar@localhost>".into(),
            timeout_secs: 15,
        }
    }
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            worker: true,
            poll_interval_secs: 5,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            lease_secs: 120,
            batch: 50,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
        }
    }
}

/// A setting that cannot be used, with the key that holds it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Settings {
    /// Loads defaults, then `file` (or `IAP_SIDECAR_CONFIG`) if any, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env_file = std::env::var_os("IAP_SIDECAR_CONFIG").map(std::path::PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
        if let Some(path) = file {
            if !path.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            builder = builder
                .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("IAP_SIDECAR")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("odoo.allowed_hosts")
                .with_list_parse_key("limits.trusted_proxies"),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if let Some(url) = &self.http.public_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > "https://".len()
                && !url.contains(char::is_whitespace);
            if !ok {
                return Err(invalid(
                    "http.public_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        let rate = self.limits.unauthenticated_per_second;
        if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
            return Err(invalid(
                "limits.unauthenticated_per_second",
                "must be a number above 0 and at most 1000000",
            ));
        }
        if self.limits.unauthenticated_burst == 0 {
            return Err(invalid(
                "limits.unauthenticated_burst",
                "must be at least 1",
            ));
        }
        if self.limits.accounts_per_database == 0 {
            return Err(invalid(
                "limits.accounts_per_database",
                "must be at least 1",
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite://, postgres:// or postgresql://",
            ));
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if self.database.call_deadline_ms == 0 {
            return Err(invalid("database.call_deadline_ms", "must be at least 1"));
        }
        if self.database.health_timeout_ms == 0 {
            return Err(invalid("database.health_timeout_ms", "must be at least 1"));
        }
        if !(100..=1_000_000).contains(&self.database.sqlite_wal_autocheckpoint) {
            return Err(invalid(
                "database.sqlite_wal_autocheckpoint",
                "must be between 100 and 1000000 pages",
            ));
        }
        if !matches!(self.database.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(invalid(
                "database.sqlite_synchronous",
                "must be `full` or `normal`",
            ));
        }
        if self.ledger.max_hold_ttl_hours < 1 {
            return Err(invalid("ledger.max_hold_ttl_hours", "must be at least 1"));
        }
        if self.ledger.sweep_interval_secs == 0 {
            return Err(invalid("ledger.sweep_interval_secs", "must be at least 1"));
        }
        if !matches!(self.smtp.security.as_str(), "starttls" | "tls" | "none") {
            return Err(invalid(
                "smtp.security",
                "must be `starttls`, `tls` or `none`",
            ));
        }
        if self
            .smtp
            .host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(invalid("smtp.host", "must not be empty"));
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("smtp.from", "is not an e-mail address"));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(invalid(
                "smtp.username",
                "username and password go together",
            ));
        }
        if self.alerts.poll_interval_secs == 0 || self.alerts.retry_base_secs == 0 {
            return Err(invalid(
                "alerts.poll_interval_secs",
                "intervals must be at least 1 second",
            ));
        }
        if self.alerts.retry_max_secs < self.alerts.retry_base_secs {
            return Err(invalid(
                "alerts.retry_max_secs",
                "must be at least alerts.retry_base_secs",
            ));
        }
        if self.alerts.lease_secs < self.smtp.timeout_secs.saturating_mul(2) {
            return Err(invalid(
                "alerts.lease_secs",
                "must be at least twice smtp.timeout_secs",
            ));
        }
        if self.odoo.timeout_secs == 0 || self.odoo.refresh_interval_secs == 0 {
            return Err(invalid(
                "odoo.timeout_secs",
                "odoo intervals must be at least 1 second",
            ));
        }
        if !(1..=1000).contains(&self.alerts.batch) {
            return Err(invalid("alerts.batch", "must be between 1 and 1000"));
        }
        self.validate_portal()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", "is not a valid log filter"));
        }
        Ok(())
    }

    /// The `portal` and `payments` sections.
    fn validate_portal(&self) -> Result<(), ConfigError> {
        if self
            .portal
            .session_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(invalid(
                "portal.session_secret",
                "must be at least 32 characters",
            ));
        }
        if !(1..=720).contains(&self.portal.session_ttl_hours) {
            return Err(invalid(
                "portal.session_ttl_hours",
                "must be between 1 and 720",
            ));
        }
        if self
            .payments
            .webhook_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            return Err(invalid(
                "payments.webhook_secret",
                "must be at least 16 characters",
            ));
        }
        if !(1..=3600).contains(&self.payments.webhook_tolerance_secs) {
            return Err(invalid(
                "payments.webhook_tolerance_secs",
                "must be between 1 and 3600",
            ));
        }
        if let Some(url) = &self.payments.checkout_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace);
            if !ok {
                return Err(invalid(
                    "payments.checkout_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http.bind.parse().map_err(|_| {
            invalid(
                "http.bind",
                format!("{:?} is not an address like 127.0.0.1:8070", self.http.bind),
            )
        })
    }
}

/// The database URL with any password hidden, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_local() {
        let s = Settings::default();
        s.validate().expect("defaults");
        assert_eq!(s.http.bind, "127.0.0.1:8070");
    }

    #[test]
    fn portal_and_payment_settings_are_checked_by_key() {
        let key_of = |s: &Settings| match s.validate() {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        };
        let mut s = Settings::default();
        s.portal.session_secret = Some(Secret::new("short"));
        assert_eq!(key_of(&s), "portal.session_secret");
        let mut s = Settings::default();
        s.payments.webhook_secret = Some(Secret::new("short"));
        assert_eq!(key_of(&s), "payments.webhook_secret");
        let mut s = Settings::default();
        s.payments.webhook_tolerance_secs = 0;
        assert_eq!(key_of(&s), "payments.webhook_tolerance_secs");
        let mut s = Settings::default();
        s.payments.checkout_url = Some("ftp://pay".into());
        assert_eq!(key_of(&s), "payments.checkout_url");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(
            redact_url("postgres://iap:hunter2@db:5432/iap"),
            "postgres://iap:***@db:5432/iap"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn gateways_load_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.toml");
        std::fs::write(
            &path,
            r#"
[sms]
gateway = "smsc"
[sms.gateways.smsc]
kind = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "iapsidecar"
password = "secret12"
[sms.gateways.twilio]
kind = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "f00dfeedf00dfeedf00dfeedf00dfeed"
from = "+15005550006"
api_base = "http://127.0.0.1:9"
"#,
        )
        .unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        match &settings.sms.gateways["smsc"] {
            crate::sms::gateway::GatewaySettings::Smpp(s) => {
                assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 2775));
                assert_eq!((s.timeout_secs, s.enquire_link_secs), (10, 30));
                assert_eq!(format!("{:?}", s.password), "[redacted]");
            }
            other => panic!("{other:?}"),
        }
        match &settings.sms.gateways["twilio"] {
            crate::sms::gateway::GatewaySettings::Twilio(s) => {
                assert_eq!(s.from.as_deref(), Some("+15005550006"));
                assert_eq!(s.messaging_service_sid, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
