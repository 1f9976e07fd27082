//! The audit trail survives what it records: `session_context_changes`
//! keeps its rows when their user or tenant is deleted, and so do the login
//! sessions (`session_logs`) of a deleted user. Their ids stay as data, as
//! `audit_logs` keeps its rows. PostgreSQL drops the foreign keys; SQLite,
//! which cannot, rebuilds the two tables (neither is referenced by another).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;
use crate::m20261124_000010_create_session_logs as session_logs;
use crate::m20261124_000011_create_session_context_changes as context_changes;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// A foreign key this migration removes (and `down` restores).
struct Key {
    name: &'static str,
    table: &'static str,
    column: &'static str,
    parent: &'static str,
}

const KEYS: [Key; 3] = [
    Key {
        name: "fk_session_context_changes_user_id",
        table: "session_context_changes",
        column: "user_id",
        parent: "users",
    },
    Key {
        name: "fk_session_context_changes_tenant_id",
        table: "session_context_changes",
        column: "tenant_id",
        parent: "tenants",
    },
    Key {
        name: "fk_session_logs_user_id",
        table: "session_logs",
        column: "user_id",
        parent: "users",
    },
];

/// Replaces an SQLite table by `create` (same columns, other constraints),
/// keeping its rows and indexes.
async fn rebuild_sqlite(
    manager: &SchemaManager<'_>,
    table: &str,
    create: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    connection
        .execute_unprepared(&format!("ALTER TABLE {table} RENAME TO {table}__old"))
        .await?;
    for index in &indexes {
        if let Some(name) = index.get_index_spec().get_name() {
            connection
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
    }
    manager.create_table(create).await?;
    connection
        .execute_unprepared(&format!("INSERT INTO {table} SELECT * FROM {table}__old"))
        .await?;
    connection
        .execute_unprepared(&format!("DROP TABLE {table}__old"))
        .await?;
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for key in KEYS {
                manager
                    .drop_foreign_key(
                        ForeignKey::drop()
                            .name(key.name)
                            .table(Alias::new(key.table))
                            .to_owned(),
                    )
                    .await?;
            }
            return Ok(());
        }
        rebuild_sqlite(
            manager,
            "session_context_changes",
            context_changes::table(false),
            context_changes::indexes(),
        )
        .await?;
        rebuild_sqlite(
            manager,
            "session_logs",
            session_logs::table(false),
            session_logs::indexes(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The restored keys cannot hold rows of deleted users or tenants.
        let connection = manager.get_connection();
        for key in KEYS {
            connection
                .execute_unprepared(&format!(
                    "DELETE FROM {} WHERE {} NOT IN (SELECT id FROM {})",
                    key.table, key.column, key.parent
                ))
                .await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for key in KEYS {
                let parent: DynIden = if key.parent == "users" {
                    Users::Table.into_iden()
                } else {
                    Tenants::Table.into_iden()
                };
                let column: DynIden = Alias::new(key.column).into_iden();
                let id: DynIden = Alias::new("id").into_iden();
                manager
                    .create_foreign_key(
                        ForeignKey::create()
                            .name(key.name)
                            .from(Alias::new(key.table), column)
                            .to(parent, id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .take(),
                    )
                    .await?;
            }
            return Ok(());
        }
        rebuild_sqlite(
            manager,
            "session_context_changes",
            context_changes::table(true),
            context_changes::indexes(),
        )
        .await?;
        rebuild_sqlite(
            manager,
            "session_logs",
            session_logs::table(true),
            session_logs::indexes(),
        )
        .await
    }
}
