//! `modules`: ordered content modules of a session.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, unique, uuid_pk};
use crate::m20261124_000006_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `modules` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Modules {
    Table,
    Id,
    SessionId,
    Name,
    OrderIndex,
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
                    .table(Modules::Table)
                    .col(uuid_pk(Modules::Id))
                    .col(ColumnDef::new(Modules::SessionId).uuid().not_null())
                    .col(ColumnDef::new(Modules::Name).string_len(255).not_null())
                    .col(ColumnDef::new(Modules::OrderIndex).integer().not_null())
                    .col(timestamp(Modules::CreatedAt))
                    .col(timestamp(Modules::UpdatedAt))
                    .index(&mut unique(
                        "uq_modules_session_order",
                        [Modules::SessionId, Modules::OrderIndex],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_modules_session_id")
                            .from(Modules::Table, Modules::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_modules_order_index",
                        Expr::col(Modules::OrderIndex).gte(0),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_modules_session_id",
                Modules::Table,
                [Modules::SessionId],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_modules_order",
                Modules::Table,
                [Modules::SessionId, Modules::OrderIndex],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Modules::Table).take())
            .await
    }
}
