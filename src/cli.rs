//! The command line of the `session-manager` binary.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::unit_of_work::{Outcome, write_detached};
use chrono::Utc;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::config::Settings;
use crate::error::AppError;
use crate::services::super_admins;
use crate::startup::Application;
use crate::telemetry::{self, LogSink};

/// Multi-tenant session management GraphQL API server.
#[derive(Debug, Parser)]
#[command(name = "session-manager", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Default: `session-manager.toml` when present.
    #[arg(long, global = true, env = "SESSION_MANAGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server (the default).
    Serve {
        /// Address to listen on, overriding the configuration.
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Applies, reverts or lists migrations.
    Migrate {
        /// The migration action.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Prints the GraphQL schema (SDL); `schema.graphql` is its output.
    ExportSchema,
    /// Fills the database with demo data and prints the logins.
    SeedDemo,
    /// Creates a super admin: the first administrator of a fresh install.
    /// The password is read from standard input, or asked for at a
    /// terminal; never from the command line.
    CreateAdmin {
        /// The login e-mail address.
        #[arg(long)]
        email: String,
        /// The display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Makes an existing account a super admin.
    Promote {
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Takes super-admin rights from an account (not from the last one).
    Demote {
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Lifts a login lockout (for when no super admin can log in).
    Unlock {
        /// The locked e-mail address.
        #[arg(long, required_unless_present = "address")]
        email: Option<String>,
        /// A slowed-down client address.
        #[arg(long)]
        address: Option<String>,
    },
}

/// Migration actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Applies pending migrations.
    Up {
        /// Apply at most this many.
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Reverts applied migrations, the newest first.
    Down {
        /// Revert this many (default 1).
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        steps: u32,
        /// Revert every migration.
        #[arg(long)]
        all: bool,
    },
    /// Lists every migration and whether it is applied.
    Status,
}

/// Runs the parsed command line; errors are printed to standard error.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ignored = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The new password: asked for twice at a terminal, otherwise the first
/// line of standard input (so that scripts can pipe it in).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(password == again, "the passwords differ");
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "no password on standard input: pipe it in, or run at a terminal to be asked"
    );
    Ok(password)
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    let mut stdout = std::io::stdout().lock();
    match cli.command.unwrap_or(Command::Serve { bind: None }) {
        Command::Serve { bind } => {
            telemetry::init(&settings.telemetry, LogSink::Stdout);
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            drop(stdout);
            let application = Application::build(settings).await?;
            application.run_until_stopped().await?;
        }
        Command::Migrate { action } => {
            let db = crate::db::connect(&settings.database).await?;
            match action {
                MigrateAction::Up { steps } => Migrator::up(&db, steps).await?,
                MigrateAction::Down { steps, all } => {
                    Migrator::down(&db, if all { None } else { Some(steps) }).await?;
                }
                MigrateAction::Status => {}
            }
            for migration in Migrator::get_migration_with_status(&db).await? {
                writeln!(
                    stdout,
                    "{:<10} {}",
                    migration.status().to_string(),
                    migration.name()
                )?;
            }
        }
        Command::ExportSchema => {
            write!(stdout, "{}", crate::graphql::sdl())?;
        }
        Command::CreateAdmin { email, name } => {
            let password = read_password()?;
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            let now = Utc::now();
            let account = write_detached(&db, now, async |txn| {
                let account =
                    super_admins::create_admin(txn, now, &email, name.as_deref(), &password).await?;
                Ok(Outcome::quiet(account))
            })
            .await
            .map_err(AppError::into_anyhow)?;
            writeln!(stdout, "Created super admin {} ({})", account.email, account.id)?;
        }
        Command::Promote { email } => {
            let db = crate::db::connect(&settings.database).await?;
            let now = Utc::now();
            let changed = write_detached(&db, now, async |txn| {
                super_admins::promote(txn, now, &email).await
            })
            .await
            .map_err(AppError::into_anyhow)?;
            let outcome = if changed { "is now" } else { "was already" };
            writeln!(stdout, "{} {outcome} a super admin", email.trim().to_lowercase())?;
        }
        Command::Demote { email } => {
            let db = crate::db::connect(&settings.database).await?;
            let now = Utc::now();
            let changed = write_detached(&db, now, async |txn| super_admins::demote(txn, now, &email).await)
                .await
                .map_err(AppError::into_anyhow)?;
            let outcome = if changed { "is no longer" } else { "was not" };
            writeln!(stdout, "{} {outcome} a super admin", email.trim().to_lowercase())?;
        }
        Command::Unlock { email, address } => {
            let db = crate::db::connect(&settings.database).await?;
            let now = Utc::now();
            let lifted = write_detached(&db, now, async |txn| {
                let lifted = super_admins::unlock(txn, now, email.as_deref(), address.as_deref()).await?;
                Ok(Outcome::quiet(lifted))
            })
            .await
            .map_err(AppError::into_anyhow)?;
            writeln!(
                stdout,
                "{}",
                if lifted { "unlocked" } else { "nothing was locked" }
            )?;
        }
        Command::SeedDemo => {
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            let demo = crate::seed::seed_demo(&db).await.map_err(AppError::into_anyhow)?;
            writeln!(stdout, "{demo}")?;
        }
    }
    Ok(())
}
