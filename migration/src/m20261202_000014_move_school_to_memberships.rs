//! The school belongs to a membership: `tenant_memberships.school_id`.
//!
//! `users.school_id` was one column for an account in several tenants, so
//! two tenants' administrators overwrote each other. Each membership now
//! carries the member's school in that tenant; the old value moves to the
//! membership of the school's tenant. PostgreSQL drops `users.school_id`.
//! SQLite cannot drop a column under a foreign key without rebuilding
//! `users`, which every other table references, so there the column stays,
//! always `NULL` and unused by the application.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::helpers::index;
use crate::m20261124_000003_create_users::Users;
use crate::m20261124_000004_create_tenant_memberships::TenantMemberships;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The new column.
#[derive(DeriveIden, Clone, Copy)]
enum Membership {
    SchoolId,
}

/// A `school_id` column referring to `schools`, `ON DELETE SET NULL`
/// (column-level `REFERENCES`, which both backends accept in `ADD COLUMN`).
fn school_column<C: IntoIden>(column: C, constraint: &str) -> ColumnDef {
    ColumnDef::new(column)
        .uuid()
        .null()
        .extra(format!(
            "CONSTRAINT {constraint} REFERENCES schools (id) ON DELETE SET NULL"
        ))
        .take()
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("tenant_memberships", "school_id").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(TenantMemberships::Table)
                        .add_column(school_column(
                            Membership::SchoolId,
                            "fk_tenant_memberships_school_id",
                        ))
                        .take(),
                )
                .await?;
        }
        manager
            .create_index(index(
                "idx_tenant_memberships_school_id",
                TenantMemberships::Table,
                [Membership::SchoolId],
            ))
            .await?;
        // Only a school of the membership's own tenant moves across.
        let connection = manager.get_connection();
        connection
            .execute_unprepared(
                "UPDATE tenant_memberships SET school_id = (
                     SELECT users.school_id FROM users
                     JOIN schools ON schools.id = users.school_id
                     WHERE users.id = tenant_memberships.user_id
                       AND schools.tenant_id = tenant_memberships.tenant_id)",
            )
            .await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Users::Table)
                            .drop_column(Users::SchoolId)
                            .take(),
                    )
                    .await?;
            }
            _ => {
                connection
                    .execute_unprepared("UPDATE users SET school_id = NULL")
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DatabaseBackend::Postgres;
        if postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(school_column(Users::SchoolId, "fk_users_school_id"))
                        .take(),
                )
                .await?;
        }
        // The school of the default membership is the closest the old model
        // has.
        let connection = manager.get_connection();
        connection
            .execute_unprepared(
                "UPDATE users SET school_id = (
                     SELECT tenant_memberships.school_id FROM tenant_memberships
                     WHERE tenant_memberships.user_id = users.id
                       AND tenant_memberships.is_default)",
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tenant_memberships_school_id")
                    .table(TenantMemberships::Table)
                    .to_owned(),
            )
            .await?;
        if postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(TenantMemberships::Table)
                        .drop_column(Membership::SchoolId)
                        .take(),
                )
                .await?;
        } else {
            // SQLite cannot drop a column under a foreign key, and rebuilding
            // `tenant_memberships` would break the guardian links' keys: the
            // column stays, emptied, and `up` reuses it.
            connection
                .execute_unprepared("UPDATE tenant_memberships SET school_id = NULL")
                .await?;
        }
        Ok(())
    }
}
