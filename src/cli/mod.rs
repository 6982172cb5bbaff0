//! The operator's command line.

mod payments;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{self, StartError};
use crate::config::{Settings, redact_url};
use crate::ledger::token::AccountToken;
use crate::ledger::{Credits, EntryKind, LedgerError, Timestamp, time::NEVER};
use crate::store::{AlertFilter, GrantRequest, NewService, Revocation, Store};
use crate::usecase::service_keys;

#[derive(Parser, Debug)]
#[command(
    name = "iap-sidecar",
    version,
    about = "Self-hosted, Odoo-compatible IAP credit platform"
)]
pub struct Cli {
    /// TOML configuration file (also IAP_SIDECAR_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve HTTP (the default when no command is given).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Register and manage services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Add credits.
    #[command(subcommand)]
    Credit(CreditCommand),
    /// Inspect accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage admin API tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Secrets that let an Odoo database register itself (its addon's Connect button).
    #[command(subcommand, name = "registration-secret")]
    RegistrationSecret(RegistrationSecretCommand),
    /// Registered Odoo databases.
    #[command(subcommand)]
    Database(DatabaseCommand),
    /// Low-credit alerts in the outbox.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Credit packs sold on the portal.
    #[command(subcommand)]
    Pack(payments::PackCommand),
    /// Portal orders: list, confirm a payment (credits the account), cancel.
    #[command(subcommand)]
    Order(payments::OrderCommand),
    /// SQLite: write a consistent copy of the database to PATH while the service runs,
    /// then check it (PostgreSQL: use pg_dump).
    Backup {
        /// A new file.
        path: PathBuf,
    },
    /// SQLite: put a checked backup in place of `database.url`'s file. Stop the service
    /// first (PostgreSQL: use pg_restore).
    Restore {
        /// The backup file.
        path: PathBuf,
        /// Replace an existing database file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RegistrationSecretCommand {
    /// Create a secret; prints it once.
    Create {
        name: String,
        /// Only these databases (`database.uuid`) may register with it; repeat for
        /// several. Without: any database.
        #[arg(long = "dbuuid")]
        dbuuids: Vec<String>,
    },
    /// Secrets by name: created, the databases they may register, revoked (never the
    /// secret itself: only its hash is kept).
    List,
    /// Revoke secret NAME: it registers no database any more; databases it registered
    /// keep working with their database tokens. Revoking twice changes nothing.
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
pub enum DatabaseCommand {
    /// Registered databases, their companies and last refresh.
    List,
    /// Forget a registration (credentials, token, copy of companies and accounts), so
    /// that the database may register again without its current token.
    Release { dbuuid: String },
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Alerts, newest first: pending, failing (with the last error) and sent.
    List {
        /// `all`, `pending`, `failing` or `sent`.
        #[arg(long, default_value = "all")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Register a service; prints its provider key once.
    Add(ServiceAdd),
    /// List services.
    List,
    /// Replace a service's provider key; prints the new key once.
    RotateKey {
        /// Technical name, as Odoo sends it in `service_name`.
        name: String,
    },
    /// Show or set which Odoo databases may use a service.
    Databases {
        name: String,
        /// Open the service to every database.
        #[arg(long, conflicts_with = "only")]
        open: bool,
        /// Limit the service to these databases (`database.uuid`); repeat for several.
        #[arg(long, value_name = "DBUUID")]
        only: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct ServiceAdd {
    /// Technical name, as Odoo sends it in `service_name` (e.g. `sms`).
    pub name: String,
    /// Label shown to users.
    #[arg(long)]
    pub label: Option<String>,
    /// Unit shown next to balances.
    #[arg(long, default_value = "Credits")]
    pub unit: String,
    /// Balances are shown as whole numbers.
    #[arg(long)]
    pub integer: bool,
    /// Credits given once per database on first use.
    #[arg(long, default_value = "0")]
    pub trial_credits: Credits,
    /// Days before trial credits expire (0: never).
    #[arg(long, default_value_t = 0)]
    pub trial_days: i32,
}

#[derive(Subcommand, Debug)]
pub enum CreditCommand {
    /// Add AMOUNT credits to the account of ACCOUNT_TOKEN for SERVICE.
    Grant {
        account_token: String,
        service: String,
        amount: Credits,
        /// Expiry: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Shown in the journal.
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Balance, lots, open holds and latest journal lines of a token's accounts.
    Show {
        account_token: String,
        /// Only this service.
        service: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Create a token; prints it once.
    Create { name: String },
    /// Revoke a token.
    Revoke { name: String },
}

/// A failed command, with the exit status to use.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    App(#[from] crate::error::AppError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    crate::tls::install_crypto_provider();
    let settings = Settings::load(cli.config.as_deref()).map_err(StartError::from)?;
    crate::telemetry::init_logs(&settings.log.level);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let store = Store::connect(&settings.database)?;
            let applied = store.migrate()?;
            say!(
                "{} migration(s) applied to {}",
                applied.len(),
                redact_url(settings.database.url.expose())
            )?;
            Ok(())
        }
        Command::Service(cmd) => service(&app::open_store(&settings)?, cmd),
        Command::Credit(cmd) => credit(&app::open_store(&settings)?, cmd),
        Command::Account(cmd) => account(&app::open_store(&settings)?, cmd),
        Command::AdminToken(cmd) => admin_token(&app::open_store(&settings)?, cmd),
        Command::Pack(cmd) => payments::pack(&app::open_store(&settings)?, cmd),
        Command::Order(cmd) => payments::order(&app::open_store(&settings)?, cmd),
        Command::Backup { path } => backup(&settings, &path),
        Command::Restore { path, force } => restore(&settings, &path, force),
        Command::RegistrationSecret(cmd) => registration_secret(&app::open_store(&settings)?, cmd),
        Command::Database(DatabaseCommand::Release { dbuuid }) => {
            if app::open_store(&settings)?.delete_database(&dbuuid)? {
                say!("database {dbuuid} released: it may register again")?;
                Ok(())
            } else {
                Err(CliError::Usage(format!(
                    "database {dbuuid} is not registered"
                )))
            }
        }
        Command::Database(DatabaseCommand::List) => {
            let databases = app::open_store(&settings)?.list_databases()?;
            if databases.is_empty() {
                say!("no registered databases")?;
            }
            for d in databases {
                say!(
                    "{} · {} at {} as {} · over {} · {} account(s) · refreshed {}{}",
                    d.dbuuid,
                    d.db_name,
                    d.url,
                    d.login,
                    d.protocol,
                    d.accounts,
                    d.refreshed_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "never".into()),
                    d.last_error
                        .map(|e| format!(" · last error: {e}"))
                        .unwrap_or_default()
                )?;
                for (id, name) in d.companies {
                    say!("  company {id}: {name}")?;
                }
            }
            Ok(())
        }
        Command::Alerts(AlertsCommand::List { status, limit }) => {
            let filter = AlertFilter::parse(&status).ok_or_else(|| {
                CliError::Usage("--status must be all, pending, failing or sent".into())
            })?;
            let store = app::open_store(&settings)?;
            let alerts = store.list_alerts(filter, limit.clamp(1, 10_000))?;
            if alerts.is_empty() {
                say!("no alerts")?;
            }
            for a in alerts {
                let when = match (a.sent_at, a.next_attempt_at) {
                    (Some(t), _) => format!("sent {t}"),
                    (None, Some(t)) => format!("next attempt {t}"),
                    (None, None) => String::new(),
                };
                say!(
                    "#{} {:<7} account {} to {} · {} attempt(s) · {when}{}",
                    a.id,
                    a.state,
                    a.account_id,
                    a.recipient,
                    a.attempts,
                    a.last_error
                        .map(|e| format!(" · last error: {e}"))
                        .unwrap_or_default()
                )?;
            }
            Ok(())
        }
    }
}

/// `backup PATH`: no migration first, so a backup can be taken before an upgrade.
fn backup(settings: &Settings, path: &std::path::Path) -> Result<(), CliError> {
    let store = Store::connect(&settings.database)?;
    let bytes = store.backup_to(path)?;
    let check = crate::store::backup::check_sqlite_backup(path)?;
    say!(
        "backup written to {} ({bytes} bytes): integrity ok, ledger audit ok ({} accounts, {} journal lines)",
        path.display(),
        check.accounts,
        check.journal_lines
    )?;
    Ok(())
}

/// `restore PATH [--force]`.
fn restore(settings: &Settings, path: &std::path::Path, force: bool) -> Result<(), CliError> {
    let url = settings.database.url.expose();
    let Some(database) = url.strip_prefix("sqlite://") else {
        return Err(crate::store::backup::restore_refused_on_postgres().into());
    };
    let database = std::path::Path::new(database);
    if database.exists() && !force {
        return Err(CliError::Usage(format!(
            "{} exists: stop the service, then run restore again with --force to replace it",
            database.display()
        )));
    }
    let check = crate::store::backup::restore_sqlite_backup(path, database)?;
    let store = app::open_store(settings)?;
    store.ping()?;
    say!(
        "restored {} into {} ({} accounts, {} journal lines); migrations applied when database.migrate_on_start is set",
        path.display(),
        database.display(),
        check.accounts,
        check.journal_lines
    )?;
    Ok(())
}

fn serve(settings: Settings) -> Result<(), CliError> {
    let db = redact_url(settings.database.url.expose());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = settings.http.workers {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        let started = app::start(settings)?;
        // Tests and scripts read this line to learn the port when binding port 0.
        say!(
            "iap-sidecar listening on http://{} (database {db})",
            started.addr
        )?;
        std::io::stdout().flush()?;
        started.wait().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn service(store: &Store, cmd: ServiceCommand) -> Result<(), CliError> {
    match cmd {
        ServiceCommand::Add(add) => {
            let new = NewService {
                label: add.label.unwrap_or_else(|| add.name.clone()),
                technical_name: add.name,
                unit_name: add.unit,
                integer_balance: add.integer,
                trial_credits: add.trial_credits,
                trial_days: add.trial_days,
            };
            let (service, key) = service_keys::create(store, &new)?;
            say!("service {} registered", service.technical_name)?;
            say!("provider key (shown once, store it now): {key}")?;
        }
        ServiceCommand::List => {
            let services = store.list_services()?;
            if services.is_empty() {
                say!("no services")?;
            }
            for s in services {
                say!(
                    "{}\t{}\tunit={}\tinteger={}\ttrial={} ({} days)",
                    s.technical_name,
                    s.label,
                    s.unit_name,
                    s.integer_balance,
                    s.trial_credits,
                    s.trial_days
                )?;
            }
        }
        ServiceCommand::Databases { name, open, only } => {
            let (service, dbs) = if open || !only.is_empty() {
                store.set_service_databases(&name, open, &only)?
            } else {
                let service = store.service_by_name(&name)?;
                let dbs = store.service_databases(service.id)?;
                (service, dbs)
            };
            if service.open_to_all {
                say!("service {}: open to every database", service.technical_name)?;
            } else {
                say!(
                    "service {}: limited to {} database(s)",
                    service.technical_name,
                    dbs.len()
                )?;
                for db in dbs {
                    say!("  {db}")?;
                }
            }
        }
        ServiceCommand::RotateKey { name } => {
            let (service, key) = service_keys::rotate(store, &name)?;
            say!(
                "service {}: new provider key (shown once): {key}",
                service.technical_name
            )?;
            say!("the previous key no longer works")?;
        }
    }
    Ok(())
}

fn parse_token(raw: &str) -> Result<AccountToken, CliError> {
    AccountToken::from_raw(raw)
        .ok_or_else(|| CliError::Usage("ACCOUNT_TOKEN must be 1-128 characters".into()))
}

fn credit(store: &Store, cmd: CreditCommand) -> Result<(), CliError> {
    let CreditCommand::Grant {
        account_token,
        service,
        amount,
        expires,
        description,
    } = cmd;
    let token = parse_token(&account_token)?;
    let expires_at = match expires {
        Some(text) => Timestamp::parse(&text).ok_or_else(|| {
            CliError::Usage(format!(
                "--expires {text:?}: use YYYY-MM-DD or an RFC 3339 time"
            ))
        })?,
        None => NEVER,
    };
    let service = store.service_by_name(&service)?;
    let account = store.ensure_account(service.id, &token, None)?;
    let outcome = store.grant(&GrantRequest {
        account_id: account.id,
        amount,
        expires_at,
        origin: EntryKind::Grant,
        reference: None,
        description: description.as_deref(),
    })?;
    say!(
        "granted {amount} {} to account {} ({}): balance {}, available {}",
        service.unit_name,
        account.id,
        service.technical_name,
        outcome.balance.balance,
        outcome.balance.available
    )?;
    Ok(())
}

fn account(store: &Store, cmd: AccountCommand) -> Result<(), CliError> {
    let AccountCommand::Show {
        account_token,
        service,
    } = cmd;
    let token = parse_token(&account_token)?;
    let services = match service {
        Some(name) => vec![store.service_by_name(&name)?],
        None => store.list_services()?,
    };
    let mut found = false;
    for svc in services {
        let Some(account) = store.find_account(svc.id, &token)? else {
            continue;
        };
        found = true;
        let b = store.balance(account.id)?;
        say!(
            "account {} · service {} · token {}… · database {} · {}{}",
            account.id,
            svc.technical_name,
            account.token_hint,
            account.dbuuid.as_deref().unwrap_or("-"),
            account.state,
            if account.disabled { " · disabled" } else { "" }
        )?;
        say!(
            "  balance {} {unit} · reserved {} · available {}",
            b.balance,
            b.reserved,
            b.available,
            unit = svc.unit_name
        )?;
        let alerts = &account.alerts;
        say!(
            "  alert below {} · warn me {} · {} · recipients {}",
            alerts.threshold,
            if alerts.warn_me { "on" } else { "off" },
            if account.alert_armed {
                "armed"
            } else {
                "not armed"
            },
            if alerts.recipients.is_empty() {
                "-".to_owned()
            } else {
                alerts
                    .recipients
                    .iter()
                    .map(|r| match &r.lang_code {
                        Some(lang) => format!("{} ({lang})", r.email),
                        None => r.email.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )?;
        let now = store.now();
        for lot in store
            .lots(account.id)?
            .into_iter()
            .filter(|l| l.expires_at > now)
        {
            say!(
                "  lot {}: {} of {} left, {}, expires {}",
                lot.id,
                lot.remaining,
                lot.amount,
                lot.origin,
                lot.expires_at
            )?;
        }
        for hold in store
            .open_holds(account.id)?
            .into_iter()
            .filter(|h| h.expires_at > now)
        {
            say!(
                "  hold {}: {} reserved until {}{}",
                hold.id,
                hold.amount,
                hold.expires_at,
                hold.description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )?;
        }
        for e in store.journal(account.id, None, 10)? {
            say!(
                "  #{} {} {:>12} → {}  {}",
                e.seq,
                e.effective_at,
                e.signed_amount(),
                e.balance_after,
                e.kind
            )?;
        }
    }
    if !found {
        return Err(LedgerError::UnknownAccount.into());
    }
    Ok(())
}

fn registration_secret(store: &Store, cmd: RegistrationSecretCommand) -> Result<(), CliError> {
    match cmd {
        RegistrationSecretCommand::Create { name, dbuuids } => {
            let secret = store.create_registration_secret_for(&name, &dbuuids)?;
            say!("registration secret {name:?} (shown once, store it now): {secret}")?;
            if !dbuuids.is_empty() {
                say!("it registers only: {}", dbuuids.join(", "))?;
            }
        }
        RegistrationSecretCommand::List => {
            let secrets = store.list_registration_secrets()?;
            if secrets.is_empty() {
                say!("no registration secrets")?;
            }
            for s in secrets {
                say!(
                    "{} · created {} · registers {} · {}",
                    s.name,
                    s.created_at,
                    s.dbuuids
                        .map(|d| d.join(", "))
                        .unwrap_or_else(|| "any database".into()),
                    s.revoked_at
                        .map(|t| format!("revoked {t}"))
                        .unwrap_or_else(|| "active".into())
                )?;
            }
        }
        RegistrationSecretCommand::Revoke { name } => {
            match store.revoke_registration_secret(&name)? {
                Revocation::Revoked => say!(
                    "registration secret {name:?} revoked: it registers no database any more \
                     (databases it registered keep working)"
                )?,
                Revocation::AlreadyRevoked(at) => say!(
                    "registration secret {name:?} was already revoked at {at}: nothing changed"
                )?,
                Revocation::Unknown => {
                    return Err(CliError::Usage(format!(
                        "no registration secret named {name:?} (see: iap-sidecar registration-secret list)"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn admin_token(store: &Store, cmd: AdminTokenCommand) -> Result<(), CliError> {
    match cmd {
        AdminTokenCommand::Create { name } => {
            let secret = store.create_admin_token(&name)?;
            say!("admin token {name:?} (shown once, store it now): {secret}")?;
        }
        AdminTokenCommand::Revoke { name } => {
            if !store.revoke_admin_token(&name)? {
                return Err(CliError::Usage(format!(
                    "no active admin token named {name:?}"
                )));
            }
            say!("admin token {name:?} revoked")?;
        }
    }
    Ok(())
}
