//! `session_context_changes`: append-only trail of tenant-context changes.

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, timestamp, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `session_context_changes` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum SessionContextChanges {
    Table,
    Id,
    UserId,
    TenantId,
    EventType,
    Metadata,
    CreatedAt,
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table(true)).await?;
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionContextChanges::Table).take())
            .await
    }
}

/// The `CREATE TABLE` statement; `with_foreign_keys: false` is the shape
/// after `m20261202_000017_keep_audit_trail`, where the ids stay as data.
pub(crate) fn table(with_foreign_keys: bool) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(SessionContextChanges::Table)
        .col(uuid_pk(SessionContextChanges::Id))
        .col(ColumnDef::new(SessionContextChanges::UserId).uuid().not_null())
        .col(ColumnDef::new(SessionContextChanges::TenantId).uuid().not_null())
        .col(
            ColumnDef::new(SessionContextChanges::EventType)
                .string_len(32)
                .not_null(),
        )
        .col(
            ColumnDef::new(SessionContextChanges::Metadata)
                .json_binary()
                .null(),
        )
        .col(timestamp(SessionContextChanges::CreatedAt))
        .check(in_check(
            SessionContextChanges::Table,
            SessionContextChanges::EventType,
            &[
                "SWITCH_TENANT",
                "SET_DEFAULT_TENANT",
                "APPLY_DEFAULT_TENANT",
                "RESET_TO_DEFAULT_TENANT",
            ],
            false,
        ));
    if with_foreign_keys {
        table
            .foreign_key(
                ForeignKey::create()
                    .name("fk_session_context_changes_user_id")
                    .from(SessionContextChanges::Table, SessionContextChanges::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_session_context_changes_tenant_id")
                    .from(SessionContextChanges::Table, SessionContextChanges::TenantId)
                    .to(Tenants::Table, Tenants::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
    }
    table.take()
}

/// The indexes of the table, created after it.
pub(crate) fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index(
            "idx_session_context_changes_user_created",
            SessionContextChanges::Table,
            [SessionContextChanges::UserId, SessionContextChanges::CreatedAt],
        ),
        index(
            "idx_session_context_changes_tenant_created",
            SessionContextChanges::Table,
            [SessionContextChanges::TenantId, SessionContextChanges::CreatedAt],
        ),
    ]
}
