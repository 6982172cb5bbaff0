//! Ledger tests run once per database backend: `sqlite::<test>` and `postgres::<test>`.
//!
//! SQLite trials use a fresh file in a temporary directory. PostgreSQL trials need
//! `IAP_SIDECAR_TEST_PG_URL` (a role with CREATEDB); each creates its own database and
//! drops it afterwards. Without the variable the PostgreSQL trials are ignored, or fail
//! when `CI=true`, so that a CI run can never pass without them.

mod admin_api;
mod alerts;
mod concurrency;
mod console;
mod console_browser;
mod engine_cache;
mod iap_bad_input;
mod iap_fixtures;
mod iap_rules;
mod model;
mod odoo_bridge;
mod outage;
mod portal;
mod portal_browser;
mod portal_orders;
mod portal_web;
mod real_odoo;
mod rpc;
mod rpc_fuzz;
mod scenarios;
mod security_contact;
mod security_registration;
mod security_web;
mod sms;
mod sms_gateways;
mod support;
mod upgrade;

use std::time::Instant;

use libtest_mimic::{Arguments, Failed, Trial};

use support::Backend;

type TestFn = fn(&Backend) -> Result<(), Failed>;

const TESTS: &[(&str, TestFn)] = &[
    ("model_random_sequences", model::model_random_sequences),
    ("concurrency_hammer", concurrency::concurrency_hammer),
    ("batch_neighbours", concurrency::batch_neighbours),
    ("expiry_and_sweeper", scenarios::expiry_and_sweeper),
    (
        "replayed_capture_keeps_settlement",
        scenarios::replayed_capture_keeps_settlement,
    ),
    ("idempotent_grant", scenarios::idempotent_grant),
    (
        "transaction_token_forms",
        scenarios::transaction_token_forms,
    ),
    ("journal_is_append_only", scenarios::journal_is_append_only),
    ("admin_api_over_http", admin_api::admin_api),
    ("iap_service_rules", iap_rules::iap_service_rules),
    ("alerts_crossing_rules", alerts::alerts_crossing_rules),
    ("odoo_bridge", odoo_bridge::odoo_bridge),
    (
        "odoo_restriction_consumption",
        odoo_bridge::odoo_restriction_consumption,
    ),
    ("iap_fixture_replay", iap_fixtures::iap_fixture_replay),
    (
        "iap_bad_input_changes_nothing",
        iap_bad_input::iap_bad_input_changes_nothing,
    ),
    ("portal_access_rules", portal::portal_access_rules),
    ("portal_provider_pages", portal::portal_provider_pages),
    ("portal_webhook_refusals", portal_orders::webhook_refusals),
    (
        "portal_confirm_credits_once",
        portal_orders::confirm_credits_once,
    ),
    (
        "security_contact_trial_once",
        security_contact::trial_once_per_account_and_database,
    ),
    (
        "security_contact_restriction",
        security_contact::restriction_follows_the_accounts_database,
    ),
    (
        "security_contact_strangers",
        security_contact::strangers_create_nothing,
    ),
    (
        "security_contact_rate_limit",
        security_contact::unauthenticated_calls_are_rate_limited,
    ),
    (
        "security_contact_accounts_bound",
        security_contact::accounts_per_database_bounded,
    ),
    (
        "security_contact_zero_hold",
        security_contact::zero_credit_hold_refused,
    ),
    (
        "security_contact_refused_authorize",
        security_contact::refused_authorize_registers_nothing,
    ),
    (
        "security_contact_cancel_expired",
        security_contact::cancel_after_expiry_matches_readme,
    ),
    (
        "security_contact_purchase_binds",
        security_contact::portal_purchase_binds_the_database,
    ),
    (
        "security_registration_takeover",
        security_registration::registration_takeover,
    ),
    (
        "security_registration_secret_revoked",
        security_registration::registration_secret_revoked,
    ),
    (
        "security_registration_probes",
        security_registration::registration_probes,
    ),
    (
        "security_no_portal_credential_stored",
        security_registration::no_portal_credential_stored,
    ),
    (
        "security_journal_export_streams",
        security_registration::journal_export_streams,
    ),
    ("outage_under_load", outage::outage_under_load),
    (
        "health_reports_failing_writes",
        outage::health_reports_failing_writes,
    ),
    (
        "rpc_random_params",
        rpc_fuzz::random_params_never_break_the_protocol,
    ),
    (
        "upgrade_from_0_1_0",
        upgrade::upgrade_from_0_1_0_keeps_everything,
    ),
    // Issue 12, finding 10.
    (
        "security_logout_ends_session",
        security_web::logout_ends_the_session,
    ),
    (
        "security_cross_site_entry_link",
        security_web::cross_site_entry_link_starts_its_own_session,
    ),
    (
        "security_lang_next_refused",
        security_web::language_switch_refuses_a_bad_next,
    ),
    (
        "security_admin_auth_first",
        security_web::admin_authenticates_before_parsing,
    ),
    ("console_root_page", console::console_root_page),
    ("console_access_rules", console::console_access_rules),
    ("console_overview_rollup", console::console_overview_rollup),
    (
        "console_admin_token_lifecycle",
        console::console_admin_token_lifecycle,
    ),
    (
        "console_database_refresh_release",
        console::console_database_refresh_release,
    ),
    (
        "console_refused_actions_leave_no_audit_line",
        console::console_refused_actions_leave_no_audit_line,
    ),
    (
        "console_action_undone_without_its_audit_line",
        console::console_action_undone_without_its_audit_line,
    ),
    (
        "sms_send_charges_per_segment",
        sms::sms_send_charges_per_segment,
    ),
    (
        "sms_insufficient_credit_per_message",
        sms::sms_insufficient_credit_per_message,
    ),
    (
        "sms_outbox_retries_refunds_and_receipts",
        sms::sms_outbox_retries_refunds_and_receipts,
    ),
    ("sms_registration_flow", sms::sms_registration_flow),
    (
        "sms_bad_input_changes_nothing",
        sms::sms_bad_input_changes_nothing,
    ),
    (
        "engine_sees_account_writes",
        engine_cache::engine_sees_account_writes,
    ),
];

/// Need `python3` with `requests` and `aiosmtpd` (installed by `.ci/run`).
const PYTHON_TESTS: &[(&str, TestFn)] = &[
    ("iap_python_client", iap_rules::iap_python_client),
    (
        "alerts_outage_and_restart",
        alerts::alerts_outage_and_restart,
    ),
    (
        "alerts_from_odoo_settings",
        alerts::alerts_from_odoo_settings,
    ),
    ("alerts_rearm_after_off", alerts::alerts_rearm_after_off),
    ("console_alert_retry", alerts::console_alert_retry),
    // Needs smpp.twisted3 too (installed by `.ci/run`).
    ("sms_through_smpp", sms::sms_through_smpp),
];

const PG_ENV: &str = "IAP_SIDECAR_TEST_PG_URL";

/// What to do with the PostgreSQL trials.
enum Postgres {
    Run(String),
    /// Not configured: ignored locally.
    Ignore,
    /// Not configured on CI: every trial fails.
    Require,
}

fn trial(name: String, backend: Backend, test: TestFn) -> Trial {
    Trial::test(name.clone(), move || {
        let started = Instant::now();
        let result = test(&backend);
        eprintln!(
            "[timing] {name}: {:.2}s{}",
            started.elapsed().as_secs_f64(),
            if result.is_ok() { "" } else { " (failed)" }
        );
        result
    })
}

fn main() {
    // reqwest is built without a default TLS provider (see src/tls.rs).
    iap_sidecar::tls::install_crypto_provider();
    let args = Arguments::from_args();
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let postgres = match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => Postgres::Run(url.trim().to_owned()),
        _ if ci => Postgres::Require,
        _ => Postgres::Ignore,
    };

    let mut trials = Vec::new();
    for &(name, test) in TESTS {
        trials.push(trial(format!("sqlite::{name}"), Backend::Sqlite, test));
        let pg_name = format!("postgres::{name}");
        trials.push(match &postgres {
            Postgres::Run(url) => trial(
                pg_name,
                Backend::Postgres {
                    admin_url: url.clone(),
                },
                test,
            ),
            Postgres::Require => Trial::test(pg_name, || {
                Err(format!(
                    "{PG_ENV} is required when CI=true: set it to a PostgreSQL URL whose role \
                     has CREATEDB, e.g. postgres://iap:iap@127.0.0.1:5432/iap"
                )
                .into())
            }),
            // Run anyway with --ignored / --include-ignored: fail, never pass.
            Postgres::Ignore => Trial::test(pg_name, || {
                Err(format!("{PG_ENV} is not set; the postgres trials cannot run").into())
            })
            .with_ignored_flag(true),
        });
    }

    let python = iap_rules::python_available() && alerts::smtp_available();
    if !python {
        eprintln!(
            "python tests ignored: they need python3 with requests and aiosmtpd \
             (pip install requests aiosmtpd)"
        );
    }
    let backends: Vec<Backend> = match &postgres {
        Postgres::Run(url) => vec![
            Backend::Sqlite,
            Backend::Postgres {
                admin_url: url.clone(),
            },
        ],
        _ => vec![Backend::Sqlite],
    };
    for &(name, test) in PYTHON_TESTS {
        for backend in &backends {
            let full = format!("{}::{name}", backend.name());
            trials.push(if python || ci {
                trial(full, backend.clone(), test)
            } else {
                Trial::test(full, || {
                    Err("python3 with requests and aiosmtpd is not installed".into())
                })
                .with_ignored_flag(true)
            });
        }
    }

    // The portal in headless Chromium: ignored without chromium and chromedriver, except
    // on CI, where the trial runs and fails with what is missing.
    let browser = portal_browser::tools();
    if let Err(missing) = &browser
        && !ci
    {
        eprintln!("browser test ignored: {missing}");
    }
    for backend in &backends {
        let full = format!("{}::portal_browser_flow", backend.name());
        trials.push(match &browser {
            Err(missing) if !ci => {
                let missing = missing.clone();
                Trial::test(full, move || Err(missing.into())).with_ignored_flag(true)
            }
            _ => trial(full, backend.clone(), portal_browser::portal_browser_flow),
        });
        let full = format!("{}::console_browser_flow", backend.name());
        trials.push(match &browser {
            Err(missing) if !ci => {
                let missing = missing.clone();
                Trial::test(full, move || Err(missing.into())).with_ignored_flag(true)
            }
            _ => trial(full, backend.clone(), console_browser::console_browser_flow),
        });
    }

    // SMS gateways against a real SMSC and Twilio's API: no database, one trial each.
    trials.extend(sms_gateways::trials(ci));

    // How the engine keeps SQLite's WAL short: nothing of it applies to PostgreSQL.
    trials.push(trial(
        "sqlite::wal_copied_to_end".to_owned(),
        Backend::Sqlite,
        concurrency::wal_copied_to_end,
    ));

    // Online backups are SQLite's (PostgreSQL uses pg_dump): one trial.
    trials.push(trial(
        "sqlite::console_backup_under_load".to_owned(),
        Backend::Sqlite,
        console::console_backup_under_load,
    ));

    // Odoo's iap.endpoint is one global setting: a single trial, on SQLite.
    let odoo_trial = "odoo::real_odoo_flows".to_owned();
    trials.push(if real_odoo::configured().is_some() {
        trial(odoo_trial, Backend::Sqlite, real_odoo::real_odoo_flows)
    } else {
        eprintln!(
            "real Odoo test ignored: set {} to run it against a running Odoo 17, 18 or 19",
            real_odoo::ENV.join(", ")
        );
        Trial::test(odoo_trial, || Err("no Odoo configured".into())).with_ignored_flag(true)
    });

    match postgres {
        Postgres::Ignore => eprintln!(
            "postgres tests ignored: set {PG_ENV}=postgres://USER:PASSWORD@HOST:5432/DB \
             (a role with CREATEDB) to run them"
        ),
        Postgres::Require => eprintln!("postgres tests will fail: CI=true and {PG_ENV} is unset"),
        Postgres::Run(_) => {}
    }

    libtest_mimic::run(&args, trials).exit();
}
