//! `users`: every account.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, int_null, range_check, timestamp, unique, uuid_pk};
use crate::m20261124_000002_create_schools::Schools;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `users` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    IsSuperAdmin,
    MaxConcurrentSessions,
    SchoolId,
    CreatedAt,
    UpdatedAt,
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid_pk(Users::Id))
                    .col(ColumnDef::new(Users::Email).string_len(320).not_null())
                    .col(ColumnDef::new(Users::Name).string_len(255).null())
                    .col(ColumnDef::new(Users::PasswordHash).text().not_null())
                    .col(
                        ColumnDef::new(Users::IsSuperAdmin)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(int_null(Users::MaxConcurrentSessions))
                    .col(ColumnDef::new(Users::SchoolId).uuid().null())
                    .col(timestamp(Users::CreatedAt))
                    .col(timestamp(Users::UpdatedAt))
                    .index(&mut unique("uq_users_email", [Users::Email]))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_school_id")
                            .from(Users::Table, Users::SchoolId)
                            .to(Schools::Table, Schools::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .check(range_check(Users::Table, Users::MaxConcurrentSessions, 1, 10))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("idx_users_school_id", Users::Table, [Users::SchoolId]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).take()).await
    }
}
