//! `audit_logs`: append-only audit trail.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `audit_logs` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum AuditLogs {
    Table,
    Id,
    TenantId,
    ActorId,
    Action,
    Resource,
    Details,
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
                    .table(AuditLogs::Table)
                    .col(uuid_pk(AuditLogs::Id))
                    .col(ColumnDef::new(AuditLogs::TenantId).uuid().null())
                    .col(ColumnDef::new(AuditLogs::ActorId).uuid().null())
                    .col(ColumnDef::new(AuditLogs::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLogs::Resource).string_len(255).not_null())
                    .col(ColumnDef::new(AuditLogs::Details).text().not_null())
                    .col(timestamp(AuditLogs::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_logs_tenant_id")
                            .from(AuditLogs::Table, AuditLogs::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_logs_actor_id")
                            .from(AuditLogs::Table, AuditLogs::ActorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;
        for stmt in [
            index(
                "idx_audit_logs_tenant_created",
                AuditLogs::Table,
                [AuditLogs::TenantId, AuditLogs::CreatedAt],
            ),
            index(
                "idx_audit_logs_created_at",
                AuditLogs::Table,
                [AuditLogs::CreatedAt],
            ),
            index("idx_audit_logs_action", AuditLogs::Table, [AuditLogs::Action]),
        ] {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLogs::Table).take())
            .await
    }
}
