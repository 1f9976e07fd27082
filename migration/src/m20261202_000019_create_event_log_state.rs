//! `event_log_state`: one row holding how far retention has swept the event
//! log. Ids are not dense (a rolled-back append leaves a gap on PostgreSQL),
//! so the first retained id cannot tell an expired cursor from a gap; the
//! highest id ever swept can.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `event_log_state` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum EventLogState {
    Table,
    Id,
    SweptThrough,
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
                    .table(EventLogState::Table)
                    .col(
                        ColumnDef::new(EventLogState::Id)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EventLogState::SweptThrough)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    // A single row.
                    .check(Check::named(
                        "ck_event_log_state_id",
                        Expr::col(EventLogState::Id).eq(1),
                    ))
                    .check(Check::named(
                        "ck_event_log_state_swept_through",
                        Expr::col(EventLogState::SweptThrough).gte(0),
                    ))
                    .take(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(EventLogState::Table)
                    .columns([EventLogState::Id, EventLogState::SweptThrough])
                    .values_panic([1.into(), 0.into()])
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventLogState::Table).take())
            .await
    }
}
