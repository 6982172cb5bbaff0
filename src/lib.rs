//! iap-sidecar: a self-hosted, Odoo-compatible In-App Purchase credit platform.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod http;
pub mod iap_rpc;
pub mod ledger;
pub mod odoo;
pub mod payments;
pub mod portal;
pub mod service_keys;
pub mod store;
pub mod sweeper;
pub mod telemetry;
pub mod tls;
