//! `guardian_links`: a guardian supervising a user inside a tenant; both must
//! be members of that tenant.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, unique, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000003_create_users::Users;
use crate::m20261124_000004_create_tenant_memberships::TenantMemberships;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `guardian_links` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum GuardianLinks {
    Table,
    Id,
    TenantId,
    GuardianId,
    UserId,
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
                    .table(GuardianLinks::Table)
                    .col(uuid_pk(GuardianLinks::Id))
                    .col(ColumnDef::new(GuardianLinks::TenantId).uuid().not_null())
                    .col(ColumnDef::new(GuardianLinks::GuardianId).uuid().not_null())
                    .col(ColumnDef::new(GuardianLinks::UserId).uuid().not_null())
                    .col(timestamp(GuardianLinks::CreatedAt))
                    .col(timestamp(GuardianLinks::UpdatedAt))
                    .index(&mut unique(
                        "uq_guardian_links_tenant_guardian_user",
                        [
                            GuardianLinks::TenantId,
                            GuardianLinks::GuardianId,
                            GuardianLinks::UserId,
                        ],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_guardian_links_tenant_id")
                            .from(GuardianLinks::Table, GuardianLinks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_guardian_links_guardian_id")
                            .from(GuardianLinks::Table, GuardianLinks::GuardianId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_guardian_links_user_id")
                            .from(GuardianLinks::Table, GuardianLinks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // Both ends must be members of the link's tenant.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_guardian_links_guardian_membership")
                            .from(
                                GuardianLinks::Table,
                                (GuardianLinks::GuardianId, GuardianLinks::TenantId),
                            )
                            .to(
                                TenantMemberships::Table,
                                (TenantMemberships::UserId, TenantMemberships::TenantId),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_guardian_links_user_membership")
                            .from(
                                GuardianLinks::Table,
                                (GuardianLinks::UserId, GuardianLinks::TenantId),
                            )
                            .to(
                                TenantMemberships::Table,
                                (TenantMemberships::UserId, TenantMemberships::TenantId),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_guardian_links_not_self",
                        Expr::col(GuardianLinks::GuardianId).ne(Expr::col(GuardianLinks::UserId)),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_guardian_links_guardian_id",
                GuardianLinks::Table,
                [GuardianLinks::GuardianId],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_guardian_links_user_id",
                GuardianLinks::Table,
                [GuardianLinks::UserId],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GuardianLinks::Table).take())
            .await
    }
}
