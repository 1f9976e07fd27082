//! `login_throttles`: failed password checks per normalised e-mail and per
//! client address, shared by every instance. The key is `email:` or
//! `address:` and a SHA-256 digest, so that no address is stored in the
//! clear and every key has the same length.

use sea_orm_migration::prelude::*;

use crate::helpers::{index, timestamp, timestamp_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `login_throttles` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum LoginThrottles {
    Table,
    Key,
    Failures,
    LastFailureAt,
    LockedUntil,
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
                    .table(LoginThrottles::Table)
                    .col(
                        ColumnDef::new(LoginThrottles::Key)
                            .string_len(80)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LoginThrottles::Failures).integer().not_null())
                    .col(timestamp(LoginThrottles::LastFailureAt))
                    .col(timestamp_null(LoginThrottles::LockedUntil))
                    .col(timestamp(LoginThrottles::UpdatedAt))
                    .check(Check::named(
                        "ck_login_throttles_failures",
                        Expr::col(LoginThrottles::Failures).gte(0),
                    ))
                    .take(),
            )
            .await?;
        // The sweeper deletes rows whose window has passed.
        manager
            .create_index(index(
                "idx_login_throttles_last_failure_at",
                LoginThrottles::Table,
                [LoginThrottles::LastFailureAt],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginThrottles::Table).take())
            .await
    }
}
