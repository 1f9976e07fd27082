//! `webhook_deliveries`: one notification for one endpoint, with its own
//! copy of the payload (the event log's retention does not touch it), its
//! state (pending until it succeeds or is given up), its schedule and its
//! lease (which instance is attempting it, until when).

use sea_orm_migration::prelude::*;

use crate::helpers::{in_check, index, int_null, timestamp, timestamp_null, uuid_pk};
use crate::m20261203_000023_create_webhook_endpoints::WebhookEndpoints;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `webhook_deliveries` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    TenantId,
    MessageId,
    Kind,
    OrderingKey,
    Sequence,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LeasedUntil,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
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
                    .table(WebhookDeliveries::Table)
                    .col(uuid_pk(WebhookDeliveries::Id))
                    .col(ColumnDef::new(WebhookDeliveries::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::TenantId).uuid().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::MessageId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::OrderingKey).uuid().null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Sequence)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::Status)
                            .string_len(16)
                            .not_null()
                            .default("pending"),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp_null(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_null(WebhookDeliveries::LeasedUntil))
                    .col(int_null(WebhookDeliveries::LastStatusCode))
                    .col(
                        ColumnDef::new(WebhookDeliveries::LastError)
                            .string_len(500)
                            .null(),
                    )
                    .col(timestamp(WebhookDeliveries::CreatedAt))
                    .col(timestamp(WebhookDeliveries::UpdatedAt))
                    .col(timestamp_null(WebhookDeliveries::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_endpoint_id")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(in_check(
                        WebhookDeliveries::Table,
                        WebhookDeliveries::Status,
                        &["pending", "succeeded", "failed"],
                        false,
                    ))
                    .check(Check::named(
                        "ck_webhook_deliveries_attempts",
                        Expr::col(WebhookDeliveries::Attempts).gte(0),
                    ))
                    // Pending deliveries have a time to be attempted at.
                    .check(Check::named(
                        "ck_webhook_deliveries_next_attempt_at",
                        Expr::col(WebhookDeliveries::Status)
                            .ne("pending")
                            .or(Expr::col(WebhookDeliveries::NextAttemptAt).is_not_null()),
                    ))
                    .take(),
            )
            .await?;
        for stmt in [
            // What is due.
            index(
                "idx_webhook_deliveries_status_next_attempt_at",
                WebhookDeliveries::Table,
                [WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            // What holds a delivery back: the earlier pending ones of its user.
            index(
                "idx_webhook_deliveries_endpoint_ordering",
                WebhookDeliveries::Table,
                [
                    WebhookDeliveries::EndpointId,
                    WebhookDeliveries::OrderingKey,
                    WebhookDeliveries::Status,
                    WebhookDeliveries::Sequence,
                ],
            ),
            // The delivery log of an endpoint, newest first.
            index(
                "idx_webhook_deliveries_endpoint_created",
                WebhookDeliveries::Table,
                [WebhookDeliveries::EndpointId, WebhookDeliveries::Id],
            ),
        ] {
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).take())
            .await
    }
}
