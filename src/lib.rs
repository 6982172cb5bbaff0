//! iap-sidecar: a self-hosted, Odoo-compatible In-App Purchase credit platform.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

/// `println!` for the operator CLI that returns the write's error instead of panicking:
/// `iap-sidecar account show … | head` closes the pipe early, and the command then ends
/// quietly (see `main.rs`) instead of with a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod admin;
pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod error;
pub mod http;
pub mod ledger;
pub mod odoo;
pub mod pages;
pub mod payments;
pub mod portal;
pub mod protocol;
pub mod secret;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod usecase;
pub mod webhook;
pub mod workers;
