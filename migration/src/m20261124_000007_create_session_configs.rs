//! `session_configs`: optional per-session configuration, keyed by session.

use sea_orm_migration::prelude::*;

use crate::helpers::{timestamp, uuid_pk};
use crate::m20261124_000006_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `session_configs` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum SessionConfigs {
    Table,
    SessionId,
    Label,
    LockProfile,
    NotifyOnUnlock,
    CustomMessage,
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
                    .table(SessionConfigs::Table)
                    .col(uuid_pk(SessionConfigs::SessionId))
                    .col(ColumnDef::new(SessionConfigs::Label).string_len(255).null())
                    .col(ColumnDef::new(SessionConfigs::LockProfile).json_binary().null())
                    .col(
                        ColumnDef::new(SessionConfigs::NotifyOnUnlock)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(ColumnDef::new(SessionConfigs::CustomMessage).text().null())
                    .col(timestamp(SessionConfigs::CreatedAt))
                    .col(timestamp(SessionConfigs::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_session_configs_session_id")
                            .from(SessionConfigs::Table, SessionConfigs::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionConfigs::Table).take())
            .await
    }
}
