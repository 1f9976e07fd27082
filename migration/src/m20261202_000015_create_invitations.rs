//! `invitations`: an administrator's invitation of an e-mail address into a
//! tenant, open until accepted, declined, revoked or expired. It belongs to
//! the account that had the address when it was sent (`invitee_id`; none:
//! nobody can accept it), not to whoever has the address later. Answered
//! invitations are deleted (the answer is in `audit_logs`), so one open
//! invitation per tenant and address is a plain unique key.

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, timestamp, unique, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;
use crate::m20261124_000002_create_schools::Schools;
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `invitations` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Invitations {
    Table,
    Id,
    TenantId,
    Email,
    InviteeId,
    Role,
    SchoolId,
    InvitedById,
    ExpiresAt,
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
                    .table(Invitations::Table)
                    .col(uuid_pk(Invitations::Id))
                    .col(ColumnDef::new(Invitations::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Invitations::Email).string_len(320).not_null())
                    .col(ColumnDef::new(Invitations::InviteeId).uuid().null())
                    .col(ColumnDef::new(Invitations::Role).text().not_null())
                    .col(ColumnDef::new(Invitations::SchoolId).uuid().null())
                    .col(ColumnDef::new(Invitations::InvitedById).uuid().null())
                    .col(timestamp(Invitations::ExpiresAt))
                    .col(timestamp(Invitations::CreatedAt))
                    .col(timestamp(Invitations::UpdatedAt))
                    .index(&mut unique(
                        "uq_invitations_tenant_email",
                        [Invitations::TenantId, Invitations::Email],
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_tenant_id")
                            .from(Invitations::Table, Invitations::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_invitee_id")
                            .from(Invitations::Table, Invitations::InviteeId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_school_id")
                            .from(Invitations::Table, Invitations::SchoolId)
                            .to(Schools::Table, Schools::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_invited_by_id")
                            .from(Invitations::Table, Invitations::InvitedById)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .check(in_check(
                        Invitations::Table,
                        Invitations::Role,
                        &["member", "guardian", "admin"],
                        false,
                    ))
                    .check(Check::named(
                        "ck_invitations_email_lower",
                        Expr::col(Invitations::Email).eq(Func::lower(Expr::col(Invitations::Email))),
                    ))
                    .take(),
            )
            .await?;
        // The invitee's list, whatever the tenant.
        manager
            .create_index(index(
                "idx_invitations_invitee_id",
                Invitations::Table,
                [Invitations::InviteeId],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_invitations_expires_at",
                Invitations::Table,
                [Invitations::ExpiresAt],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).take())
            .await
    }
}
