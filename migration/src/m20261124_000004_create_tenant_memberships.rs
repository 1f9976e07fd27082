//! `tenant_memberships`: a user's role in a tenant and their default tenant.

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, timestamp, unique, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `tenant_memberships` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum TenantMemberships {
    Table,
    Id,
    UserId,
    TenantId,
    Role,
    IsDefault,
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
                    .table(TenantMemberships::Table)
                    .col(uuid_pk(TenantMemberships::Id))
                    .col(ColumnDef::new(TenantMemberships::UserId).uuid().not_null())
                    .col(ColumnDef::new(TenantMemberships::TenantId).uuid().not_null())
                    .col(ColumnDef::new(TenantMemberships::Role).text().not_null())
                    .col(
                        ColumnDef::new(TenantMemberships::IsDefault)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp(TenantMemberships::CreatedAt))
                    .col(timestamp(TenantMemberships::UpdatedAt))
                    // Also the target of guardian_links' composite foreign keys.
                    .index(&mut unique(
                        "uq_tenant_memberships_user_tenant",
                        [TenantMemberships::UserId, TenantMemberships::TenantId],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tenant_memberships_user_id")
                            .from(TenantMemberships::Table, TenantMemberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tenant_memberships_tenant_id")
                            .from(TenantMemberships::Table, TenantMemberships::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(in_check(
                        TenantMemberships::Table,
                        TenantMemberships::Role,
                        &["member", "guardian", "admin"],
                        false,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_tenant_memberships_tenant_id",
                TenantMemberships::Table,
                [TenantMemberships::TenantId],
            ))
            .await?;
        // At most one default tenant per user: a partial unique index
        // (`... WHERE is_default`), supported by SQLite and PostgreSQL.
        manager
            .create_index(
                Index::create()
                    .name("uq_tenant_memberships_default")
                    .table(TenantMemberships::Table)
                    .col(TenantMemberships::UserId)
                    .unique()
                    .and_where(Expr::col(TenantMemberships::IsDefault))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantMemberships::Table).take())
            .await
    }
}
