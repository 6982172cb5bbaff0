//! What the browser faces (portal and console) share: the page chrome and style
//! ([`layout`]), languages ([`i18n`]), charts ([`chart`]), CSV exports ([`csv`]), and
//! signed values — session cookies, alert links, CSRF tokens ([`session`]).

pub mod chart;
pub mod csv;
pub mod i18n;
pub mod layout;
pub mod request;
pub mod session;
