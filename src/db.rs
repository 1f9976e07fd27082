//! Database connection and migrations.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr, Statement,
    TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// Key of the PostgreSQL advisory lock held while migrating, so that several
/// instances starting at once on one database take turns.
const MIGRATION_LOCK_KEY: i64 = 0x5e55_1011_0001;

/// Opens the connection pool described by `settings`.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_owned());
    options
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(settings.log_statements)
        .map_sqlx_sqlite_opts(|options| {
            options
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    if !settings.is_postgres() {
        // One writer at a time is all SQLite allows; a single pooled
        // connection avoids SQLITE_BUSY between our own connections.
        options.max_connections(1);
    }
    Database::connect(options).await
}

/// The pool queries read through: on SQLite, `database.sqlite_read_connections`
/// read-only connections beside the single writing one (see
/// [`connect_reader`]); on PostgreSQL, the main pool.
pub(crate) async fn connect_query_reader(
    settings: &DatabaseSettings,
    db: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if settings.is_postgres() {
        return Ok(db.clone());
    }
    connect_reader(settings, settings.sqlite_read_connections, db).await
}

/// A read-only pool of `connections` of its own (the event log's, so that
/// delivery and replays never queue behind requests; the queries' on
/// SQLite): on SQLite, no reader waits for the single connection each
/// write holds in turn, as WAL lets readers run beside the writer. An
/// in-memory SQLite database cannot be shared, so it keeps the main pool.
pub(crate) async fn connect_reader(
    settings: &DatabaseSettings,
    connections: u32,
    db: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose_secret();
    if !settings.is_postgres() && (url.contains(":memory:") || url.contains("mode=memory")) {
        return Ok(db.clone());
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(settings.log_statements)
        .map_sqlx_sqlite_opts(|options| {
            options
                // WAL is a property of the file, set by the main pool.
                .read_only(true)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(options).await
}

/// Applies every pending migration. On PostgreSQL the work happens under an
/// advisory lock, because sea-orm-migration takes none of its own.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            // The lock lives as long as this transaction; migrations run on
            // other pooled connections meanwhile.
            let lock = db.begin().await?;
            lock.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
            let result = Migrator::up(db, None).await;
            lock.commit().await?;
            result
        }
        _ => Migrator::up(db, None).await,
    }
}

/// Checks that the database answers.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}
