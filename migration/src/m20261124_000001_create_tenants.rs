//! `tenants`: the organizations (districts), with district-level session
//! settings overrides.

use sea_orm_migration::prelude::*;

use crate::helpers::{bool_null, int_null, range_check, timestamp, uuid_pk};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `tenants` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Tenants {
    Table,
    Id,
    Name,
    IsSharedDeviceMode,
    SessionIdleTimeoutMinutes,
    SessionAbsoluteTimeoutMinutes,
    MaxConcurrentSessions,
    InvalidateAllSessionsOnLogin,
    SessionWarningMinutes,
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
                    .table(Tenants::Table)
                    .col(uuid_pk(Tenants::Id))
                    .col(ColumnDef::new(Tenants::Name).string_len(255).not_null())
                    .col(bool_null(Tenants::IsSharedDeviceMode))
                    .col(int_null(Tenants::SessionIdleTimeoutMinutes))
                    .col(int_null(Tenants::SessionAbsoluteTimeoutMinutes))
                    .col(int_null(Tenants::MaxConcurrentSessions))
                    .col(bool_null(Tenants::InvalidateAllSessionsOnLogin))
                    .col(int_null(Tenants::SessionWarningMinutes))
                    .col(timestamp(Tenants::CreatedAt))
                    .col(timestamp(Tenants::UpdatedAt))
                    .check(range_check(
                        Tenants::Table,
                        Tenants::SessionIdleTimeoutMinutes,
                        5,
                        120,
                    ))
                    .check(range_check(
                        Tenants::Table,
                        Tenants::SessionAbsoluteTimeoutMinutes,
                        30,
                        1440,
                    ))
                    .check(range_check(Tenants::Table, Tenants::MaxConcurrentSessions, 1, 10))
                    .check(range_check(Tenants::Table, Tenants::SessionWarningMinutes, 1, 10))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tenants::Table).take())
            .await
    }
}
