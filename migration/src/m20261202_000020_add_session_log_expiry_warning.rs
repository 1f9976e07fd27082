//! `session_logs.expiry_warned_for`: the deadline an `EXPIRING_SOON` event
//! was last appended for, so the sweeper warns once per deadline on every
//! instance together (the warning is an event in the log, not a per-
//! subscriber computation).

use sea_orm_migration::prelude::*;

use crate::helpers::timestamp_null;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `session_logs` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum SessionLogs {
    Table,
    ExpiryWarnedFor,
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SessionLogs::Table)
                    .add_column(timestamp_null(SessionLogs::ExpiryWarnedFor))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SessionLogs::Table)
                    .drop_column(SessionLogs::ExpiryWarnedFor)
                    .take(),
            )
            .await
    }
}
