//! `webhook_attempts`: every attempt of a delivery (when, the status code
//! or the error, how long it took), for the delivery log.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, int_null, timestamp, uuid_pk};
use crate::m20261203_000024_create_webhook_deliveries::WebhookDeliveries;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `webhook_attempts` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    Attempt,
    AttemptedAt,
    StatusCode,
    Error,
    DurationMs,
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
                    .table(WebhookAttempts::Table)
                    .col(uuid_pk(WebhookAttempts::Id))
                    .col(ColumnDef::new(WebhookAttempts::DeliveryId).uuid().not_null())
                    .col(ColumnDef::new(WebhookAttempts::Attempt).integer().not_null())
                    .col(timestamp(WebhookAttempts::AttemptedAt))
                    .col(int_null(WebhookAttempts::StatusCode))
                    .col(ColumnDef::new(WebhookAttempts::Error).string_len(500).null())
                    .col(ColumnDef::new(WebhookAttempts::DurationMs).integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempts_delivery_id")
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Check::named(
                        "ck_webhook_attempts_attempt",
                        Expr::col(WebhookAttempts::Attempt).gte(1),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_webhook_attempts_delivery_id",
                WebhookAttempts::Table,
                [WebhookAttempts::DeliveryId, WebhookAttempts::Attempt],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookAttempts::Table).take())
            .await
    }
}
