//! `webhook_endpoints`: where a tenant's notifications are delivered (URL,
//! signing secrets, which kinds), configured by its administrators.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, timestamp_null, uuid_pk};
use crate::m20261124_000001_create_tenants::Tenants;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `webhook_endpoints` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum WebhookEndpoints {
    Table,
    Id,
    TenantId,
    Url,
    Description,
    Kinds,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    Enabled,
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
                    .table(WebhookEndpoints::Table)
                    .col(uuid_pk(WebhookEndpoints::Id))
                    .col(ColumnDef::new(WebhookEndpoints::TenantId).uuid().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Url).string_len(2048).not_null())
                    .col(
                        ColumnDef::new(WebhookEndpoints::Description)
                            .string_len(255)
                            .null(),
                    )
                    .col(ColumnDef::new(WebhookEndpoints::Kinds).json_binary().not_null())
                    .col(
                        ColumnDef::new(WebhookEndpoints::Secret)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::PreviousSecret)
                            .string_len(128)
                            .null(),
                    )
                    .col(timestamp_null(WebhookEndpoints::PreviousSecretExpiresAt))
                    .col(
                        ColumnDef::new(WebhookEndpoints::Enabled)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(timestamp(WebhookEndpoints::CreatedAt))
                    .col(timestamp(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_endpoints_tenant_id")
                            .from(WebhookEndpoints::Table, WebhookEndpoints::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_webhook_endpoints_previous_secret",
                        Expr::col(WebhookEndpoints::PreviousSecret)
                            .is_null()
                            .eq(Expr::col(WebhookEndpoints::PreviousSecretExpiresAt).is_null()),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_webhook_endpoints_tenant_id",
                WebhookEndpoints::Table,
                [WebhookEndpoints::TenantId],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).take())
            .await
    }
}
