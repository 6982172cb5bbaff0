//! TLS set-up shared by the HTTP client (Odoo bridge) and the SMTP client.

/// Selects ring as rustls' crypto provider, once per process (a second call is a no-op).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
