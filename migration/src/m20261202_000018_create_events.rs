//! `events`: the durable event log, the source of truth for everything the
//! server announces. Ids only grow (`AUTOINCREMENT` on SQLite, so retention
//! emptying the table never restarts them); tenant and payload ids are data,
//! without foreign keys, so the log outlives what it mentions.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `events` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Events {
    Table,
    Id,
    Topic,
    TenantId,
    Payload,
    CreatedAt,
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
                    .table(Events::Table)
                    .col(
                        ColumnDef::new(Events::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Events::Topic).string_len(32).not_null())
                    .col(ColumnDef::new(Events::TenantId).uuid().null())
                    .col(ColumnDef::new(Events::Payload).json_binary().not_null())
                    .col(timestamp(Events::CreatedAt))
                    .take(),
            )
            .await?;
        // Retention deletes by age.
        manager
            .create_index(index("idx_events_created_at", Events::Table, [Events::CreatedAt]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).take())
            .await
    }
}
