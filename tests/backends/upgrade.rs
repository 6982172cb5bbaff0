//! Upgrading in place: a database written by release 0.1.0 (commit deb2c45) — built with
//! only the migrations of that release (tests/fixtures/migrations-0.1.0/) and the rows it
//! writes (tests/fixtures/upgrade-0.1.0.sql) — is migrated by the server's normal path
//! (`Store::migrate`, every migration embedded in the binary), and keeps every balance,
//! journal line and row; the ledger audit passes and the ledger takes new writes.
//!
//! The old release's migrations are fixed files, while the upgrade applies whatever the
//! tree holds: a migration added later is covered without touching this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use libtest_mimic::Failed;

use iap_sidecar::config::{DatabaseSettings, Secret};
use iap_sidecar::ledger::token::random_hex;
use iap_sidecar::ledger::{AccountId, Credits, EntryKind, LotId, time::NEVER};
use iap_sidecar::payments::OrderId;
use iap_sidecar::store::{GrantRequest, Store};

use crate::support::{Backend, audit_clean, with_database};

/// Tables of release 0.1.0 whose rows an upgrade must keep, with the fixture's count.
const KEPT: &[(&str, i64)] = &[
    ("services", 2),
    ("service_databases", 1),
    ("accounts", 3),
    ("lots", 5),
    ("holds", 3),
    ("hold_allocations", 1),
    ("journal", 7),
    ("trial_grants", 1),
    ("alert_outbox", 2),
    ("packs", 2),
    ("orders", 3),
    ("payment_events", 1),
    ("portal_secrets", 1),
    ("admin_tokens", 2),
    ("idempotency_keys", 1),
    ("registration_secrets", 1),
    ("odoo_databases", 1),
    ("odoo_companies", 2),
    ("odoo_accounts", 2),
];

/// Per account of the fixture: balance and reserved (units), and its journal as
/// (seq, amount, balance after).
type Expected = (i64, i64, i64, &'static [(i64, i64, i64)]);
const ACCOUNTS: &[Expected] = &[
    (
        1,
        950_000,
        100_000,
        &[
            (1, 1_000_000, 1_000_000),
            (2, 50_000, 1_050_000),
            (3, -300_000, 750_000),
            (4, 200_000, 950_000),
        ],
    ),
    (2, 0, 0, &[(1, 30_000, 30_000), (2, -30_000, 0)]),
    (3, 5_000_000, 0, &[(1, 5_000_000, 5_000_000)]),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Migration directory names under `dir`.
fn names(dir: &Path) -> Result<BTreeSet<String>, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| {
            e.map_err(|e| e.to_string())
                .map(|e| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A direct connection, for counting rows.
enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    fn count(&mut self, table: &str) -> Result<i64, String> {
        let query = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"));
        match self {
            Conn::Sqlite(c) => query.get_result::<Count>(c),
            Conn::Pg(c) => query.get_result::<Count>(c),
        }
        .map(|r| r.n)
        .map_err(|e| format!("counting {table}: {e}"))
    }
}

/// A database of release 0.1.0 with the fixture's rows; returns its URL and what to drop.
fn old_database(
    backend: &Backend,
    tmp: &tempfile::TempDir,
) -> Result<(String, Option<(String, String)>), String> {
    let rows = std::fs::read_to_string(fixtures().join("upgrade-0.1.0.sql"))
        .map_err(|e| format!("fixture: {e}"))?;
    let old = fixtures().join("migrations-0.1.0").join(backend.name());
    let old = FileBasedMigrations::from_path(&old).map_err(|e| format!("{e}"))?;
    match backend {
        Backend::Sqlite => {
            let path = tmp.path().join("old.db");
            let path = path
                .to_str()
                .ok_or("temporary path is not UTF-8")?
                .to_owned();
            let mut c = SqliteConnection::establish(&path).map_err(|e| e.to_string())?;
            c.run_pending_migrations(old)
                .map_err(|e| format!("0.1.0 migrations: {e}"))?;
            c.batch_execute(&rows)
                .map_err(|e| format!("fixture rows: {e}"))?;
            check_counts(&mut Conn::Sqlite(c))?;
            Ok((format!("sqlite://{path}"), None))
        }
        Backend::Postgres { admin_url } => {
            let name = format!("iap_upgrade_{}", random_hex(8));
            let mut admin = PgConnection::establish(admin_url).map_err(|e| e.to_string())?;
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
            let url = with_database(admin_url, &name);
            let drop = Some((admin_url.clone(), name));
            let mut c = PgConnection::establish(&url).map_err(|e| e.to_string())?;
            c.run_pending_migrations(old)
                .map_err(|e| format!("0.1.0 migrations: {e}"))?;
            c.batch_execute(&rows)
                .map_err(|e| format!("fixture rows: {e}"))?;
            // The release inserted without ids; these rows name theirs, so move the
            // identity sequences past them as the release's own inserts would have.
            for (table, _) in KEPT {
                let has_id: i64 = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM information_schema.columns \
                     WHERE table_name = '{table}' AND column_name = 'id' AND is_identity = 'YES'"
                ))
                .get_result::<Count>(&mut c)
                .map_err(|e| e.to_string())?
                .n;
                if has_id == 1 {
                    diesel::sql_query(format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         (SELECT MAX(id) FROM {table}))"
                    ))
                    .execute(&mut c)
                    .map_err(|e| format!("sequence of {table}: {e}"))?;
                }
            }
            check_counts(&mut Conn::Pg(c))?;
            Ok((url, drop))
        }
    }
}

fn check_counts(c: &mut Conn) -> Result<(), String> {
    for (table, expected) in KEPT {
        let n = c.count(table)?;
        if n != *expected {
            return Err(format!("{table}: {n} rows, expected {expected}"));
        }
    }
    Ok(())
}

pub fn upgrade_from_0_1_0_keeps_everything(backend: &Backend) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (url, drop) = old_database(backend, &tmp)?;
    let result = upgrade_and_check(backend, &url);
    if let Some((admin_url, name)) = drop {
        // Best effort, whatever the outcome; the pool above is closed by now.
        if let Ok(mut admin) = PgConnection::establish(&admin_url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
    result.map_err(Failed::from)
}

fn upgrade_and_check(backend: &Backend, url: &str) -> Result<(), String> {
    let settings = DatabaseSettings {
        url: Secret::new(url.to_owned()),
        pool_size: 2,
        ..DatabaseSettings::default()
    };
    let store = Store::connect(&settings).map_err(|e| format!("connect: {e}"))?;
    let applied: BTreeSet<String> = store
        .migrate()
        .map_err(|e| format!("upgrade: {e}"))?
        .into_iter()
        .collect();

    // Exactly the migrations the tree has beyond the release's, whoever added them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = names(&root.join("migrations").join(backend.name()))?;
    let old = names(&fixtures().join("migrations-0.1.0").join(backend.name()))?;
    let version = |n: &String| n.split('_').next().unwrap_or_default().replace('-', "");
    let expected: BTreeSet<String> = all.difference(&old).map(version).collect();
    let applied: BTreeSet<String> = applied.iter().map(|v| v.replace('-', "")).collect();
    if applied != expected {
        return Err(format!(
            "upgrade applied {applied:?}, the tree has {expected:?} beyond 0.1.0"
        ));
    }

    match backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            check_counts(&mut Conn::Sqlite(c))?;
        }
        Backend::Postgres { .. } => {
            let c = PgConnection::establish(url).map_err(|e| e.to_string())?;
            check_counts(&mut Conn::Pg(c))?;
        }
    }

    for (id, balance, reserved, lines) in ACCOUNTS {
        let account = AccountId::from_stored(*id);
        let b = store
            .balance(account)
            .map_err(|e| format!("balance {id}: {e}"))?;
        if (b.balance.units(), b.reserved.units()) != (*balance, *reserved) {
            return Err(format!(
                "account {id}: balance {} reserved {} after the upgrade, expected {balance} {reserved}",
                b.balance.units(),
                b.reserved.units()
            ));
        }
        let mut journal: Vec<(i64, i64, i64)> = store
            .journal(account, None, 100)
            .map_err(|e| format!("journal {id}: {e}"))?
            .into_iter()
            .map(|e| (e.seq, e.amount_units, e.balance_after.units()))
            .collect();
        journal.sort_unstable();
        if journal != *lines {
            return Err(format!(
                "account {id}: journal {journal:?}, expected {lines:?}"
            ));
        }
        audit_clean(&store, account)?;
    }
    let order = store
        .order(OrderId::from_stored(1))
        .map_err(|e| format!("order 1: {e}"))?;
    if order.status.as_str() != "credited" || order.lot_id != Some(LotId::from_stored(3)) {
        return Err(format!("order 1 after the upgrade: {order:?}"));
    }

    // The upgraded ledger takes writes: a grant lands after the old lines.
    store
        .grant(&GrantRequest {
            account_id: AccountId::from_stored(1),
            amount: Credits::whole(10).map_err(|e| e.to_string())?,
            expires_at: NEVER,
            origin: EntryKind::Grant,
            reference: None,
            description: Some("after the upgrade"),
        })
        .map_err(|e| format!("grant after the upgrade: {e}"))?;
    let b = store
        .balance(AccountId::from_stored(1))
        .map_err(|e| e.to_string())?;
    if b.balance.units() != 1_050_000 {
        return Err(format!("balance after a new grant: {}", b.balance.units()));
    }
    audit_clean(&store, AccountId::from_stored(1))?;
    Ok(())
}
