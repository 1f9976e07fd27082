//! `videos`: videos of a module.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, uuid_pk};
use crate::m20261124_000008_create_modules::Modules;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `videos` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Videos {
    Table,
    Id,
    ModuleId,
    FileName,
    FileUrl,
    FileSize,
    MimeType,
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
                    .table(Videos::Table)
                    .col(uuid_pk(Videos::Id))
                    .col(ColumnDef::new(Videos::ModuleId).uuid().not_null())
                    .col(ColumnDef::new(Videos::FileName).string_len(255).not_null())
                    .col(ColumnDef::new(Videos::FileUrl).string_len(1024).not_null())
                    .col(ColumnDef::new(Videos::FileSize).big_integer().not_null())
                    .col(ColumnDef::new(Videos::MimeType).string_len(100).not_null())
                    .col(timestamp(Videos::CreatedAt))
                    .col(timestamp(Videos::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_videos_module_id")
                            .from(Videos::Table, Videos::ModuleId)
                            .to(Modules::Table, Modules::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_videos_file_size",
                        Expr::col(Videos::FileSize).gte(0),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("idx_videos_module_id", Videos::Table, [Videos::ModuleId]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Videos::Table).take())
            .await
    }
}
