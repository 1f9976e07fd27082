//! `schools`: schools of a tenant, with school-level session settings
//! overrides.

use sea_orm_migration::prelude::*;

use crate::helpers::{bool_null, int_null, range_check, timestamp, unique, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `schools` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Schools {
    Table,
    Id,
    TenantId,
    Name,
    IsSharedDeviceMode,
    SessionIdleTimeoutMinutes,
    SessionAbsoluteTimeoutMinutes,
    MaxConcurrentSessions,
    InvalidateAllSessionsOnLogin,
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
        // The unique (tenant_id, name) index also serves lookups by tenant_id.
        manager
            .create_table(
                Table::create()
                    .table(Schools::Table)
                    .col(uuid_pk(Schools::Id))
                    .col(ColumnDef::new(Schools::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Schools::Name).string_len(255).not_null())
                    .col(bool_null(Schools::IsSharedDeviceMode))
                    .col(int_null(Schools::SessionIdleTimeoutMinutes))
                    .col(int_null(Schools::SessionAbsoluteTimeoutMinutes))
                    .col(int_null(Schools::MaxConcurrentSessions))
                    .col(bool_null(Schools::InvalidateAllSessionsOnLogin))
                    .col(timestamp(Schools::CreatedAt))
                    .col(timestamp(Schools::UpdatedAt))
                    .index(&mut unique(
                        "uq_schools_tenant_name",
                        [Schools::TenantId, Schools::Name],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_schools_tenant_id")
                            .from(Schools::Table, Schools::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(range_check(
                        Schools::Table,
                        Schools::SessionIdleTimeoutMinutes,
                        5,
                        120,
                    ))
                    .check(range_check(
                        Schools::Table,
                        Schools::SessionAbsoluteTimeoutMinutes,
                        30,
                        1440,
                    ))
                    .check(range_check(Schools::Table, Schools::MaxConcurrentSessions, 1, 10))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Schools::Table).take())
            .await
    }
}
