//! `session_logs`: login sessions, each bound to an active tenant context.

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, timestamp, timestamp_null, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `session_logs` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum SessionLogs {
    Table,
    Id,
    UserId,
    TenantId,
    LoginAt,
    LogoutAt,
    LastSeenAt,
    UserAgent,
    IpAddress,
    DeviceInfo,
    EndReason,
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
        manager.create_table(table(true)).await?;
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionLogs::Table).take())
            .await
    }
}

/// The `CREATE TABLE` statement; `with_user_foreign_key: false` is the
/// shape after `m20261202_000017_keep_audit_trail`, where a deleted user's
/// login sessions stay with their id as data.
pub(crate) fn table(with_user_foreign_key: bool) -> TableCreateStatement {
    let logout_at = || Expr::col(SessionLogs::LogoutAt);
    let end_reason = || Expr::col(SessionLogs::EndReason);
    let mut table = Table::create();
    table
        .table(SessionLogs::Table)
        .col(uuid_pk(SessionLogs::Id))
        .col(ColumnDef::new(SessionLogs::UserId).uuid().not_null())
        .col(ColumnDef::new(SessionLogs::TenantId).uuid().null())
        .col(timestamp(SessionLogs::LoginAt))
        .col(timestamp_null(SessionLogs::LogoutAt))
        .col(timestamp(SessionLogs::LastSeenAt))
        .col(ColumnDef::new(SessionLogs::UserAgent).text().null())
        .col(ColumnDef::new(SessionLogs::IpAddress).string_len(64).null())
        .col(ColumnDef::new(SessionLogs::DeviceInfo).text().null())
        .col(ColumnDef::new(SessionLogs::EndReason).string_len(32).null())
        .col(timestamp(SessionLogs::CreatedAt))
        .col(timestamp(SessionLogs::UpdatedAt))
        .foreign_key(
            ForeignKey::create()
                .name("fk_session_logs_tenant_id")
                .from(SessionLogs::Table, SessionLogs::TenantId)
                .to(Tenants::Table, Tenants::Id)
                .on_delete(ForeignKeyAction::SetNull),
        )
        .check(in_check(
            SessionLogs::Table,
            SessionLogs::EndReason,
            &[
                "logout",
                "revoked",
                "evicted",
                "invalidated",
                "expired_idle",
                "expired_absolute",
            ],
            true,
        ))
        // Open (both NULL) or ended (both set).
        .check(Check::named(
            "ck_session_logs_logout_end_reason",
            logout_at()
                .is_null()
                .and(end_reason().is_null())
                .or(logout_at().is_not_null().and(end_reason().is_not_null())),
        ));
    if with_user_foreign_key {
        table.foreign_key(
            ForeignKey::create()
                .name("fk_session_logs_user_id")
                .from(SessionLogs::Table, SessionLogs::UserId)
                .to(Users::Table, Users::Id)
                .on_delete(ForeignKeyAction::Cascade),
        );
    }
    table.take()
}

/// The indexes of the table, created after it.
pub(crate) fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index(
            "idx_session_logs_user_logout",
            SessionLogs::Table,
            [SessionLogs::UserId, SessionLogs::LogoutAt],
        ),
        index(
            "idx_session_logs_tenant_id",
            SessionLogs::Table,
            [SessionLogs::TenantId],
        ),
    ]
}
