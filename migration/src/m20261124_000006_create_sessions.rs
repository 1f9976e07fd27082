//! `sessions`: guardian–user sessions with status and content.

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, timestamp, timestamp_null, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `sessions` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Sessions {
    Table,
    Id,
    TenantId,
    UserId,
    GuardianId,
    Name,
    SessionType,
    Status,
    StartTime,
    EndTime,
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
                    .table(Sessions::Table)
                    .col(uuid_pk(Sessions::Id))
                    .col(ColumnDef::new(Sessions::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                    .col(ColumnDef::new(Sessions::GuardianId).uuid().null())
                    .col(ColumnDef::new(Sessions::Name).string_len(255).not_null())
                    .col(
                        ColumnDef::new(Sessions::SessionType)
                            .string_len(50)
                            .not_null()
                            .default("Linear Flow"),
                    )
                    .col(
                        ColumnDef::new(Sessions::Status)
                            .string_len(16)
                            .not_null()
                            .default("active"),
                    )
                    .col(timestamp(Sessions::StartTime))
                    .col(timestamp_null(Sessions::EndTime))
                    .col(timestamp(Sessions::CreatedAt))
                    .col(timestamp(Sessions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_tenant_id")
                            .from(Sessions::Table, Sessions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user_id")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_guardian_id")
                            .from(Sessions::Table, Sessions::GuardianId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(in_check(
                        Sessions::Table,
                        Sessions::Status,
                        &["active", "ended", "expired", "revoked"],
                        false,
                    ))
                    .check(Check::named(
                        "ck_sessions_end_after_start",
                        Expr::col(Sessions::EndTime)
                            .is_null()
                            .or(Expr::col(Sessions::EndTime).gte(Expr::col(Sessions::StartTime))),
                    ))
                    .take(),
            )
            .await?;
        for stmt in [
            index("idx_sessions_user_id", Sessions::Table, [Sessions::UserId]),
            index(
                "idx_sessions_guardian_id",
                Sessions::Table,
                [Sessions::GuardianId],
            ),
            index(
                "idx_sessions_tenant_status",
                Sessions::Table,
                [Sessions::TenantId, Sessions::Status],
            ),
            index(
                "idx_sessions_status_end_time",
                Sessions::Table,
                [Sessions::Status, Sessions::EndTime],
            ),
        ] {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).take())
            .await
    }
}
