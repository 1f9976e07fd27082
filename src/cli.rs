//! The command line of the `session-manager` binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::config::Settings;
use crate::error::AppError;
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
        Command::SeedDemo => {
            let db = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&db).await?;
            let demo = crate::seed::seed_demo(&db).await.map_err(AppError::into_anyhow)?;
            writeln!(stdout, "{demo}")?;
        }
    }
    Ok(())
}
