//! `system_settings`: single-row (id = 1) table of system defaults for
//! login-session settings, created with its row (all values NULL).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::ChronoUtc;

use crate::helpers::{bool_null, int_null, range_check, timestamp};
use crate::m20261124_000003_create_users::Users;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `system_settings` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum SystemSettings {
    Table,
    Id,
    DefaultIdleTimeoutMinutes,
    DefaultAbsoluteTimeoutMinutes,
    DefaultMaxConcurrentSessions,
    SessionWarningMinutes,
    SharedDeviceIdleTimeoutMinutes,
    SharedDeviceAbsoluteTimeoutMinutes,
    SharedDeviceMaxConcurrentSessions,
    SharedDeviceAlwaysInvalidateAllSessions,
    UpdatedAt,
    UpdatedBy,
}

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use SystemSettings as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(ColumnDef::new(S::Id).integer().not_null().primary_key())
                    .col(int_null(S::DefaultIdleTimeoutMinutes))
                    .col(int_null(S::DefaultAbsoluteTimeoutMinutes))
                    .col(int_null(S::DefaultMaxConcurrentSessions))
                    .col(int_null(S::SessionWarningMinutes))
                    .col(int_null(S::SharedDeviceIdleTimeoutMinutes))
                    .col(int_null(S::SharedDeviceAbsoluteTimeoutMinutes))
                    .col(int_null(S::SharedDeviceMaxConcurrentSessions))
                    .col(bool_null(S::SharedDeviceAlwaysInvalidateAllSessions))
                    .col(timestamp(S::UpdatedAt))
                    .col(ColumnDef::new(S::UpdatedBy).uuid().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_system_settings_updated_by")
                            .from(S::Table, S::UpdatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .check(Check::named(
                        "ck_system_settings_single_row",
                        Expr::col(S::Id).eq(1),
                    ))
                    .check(range_check(S::Table, S::DefaultIdleTimeoutMinutes, 5, 120))
                    .check(range_check(S::Table, S::DefaultAbsoluteTimeoutMinutes, 30, 1440))
                    .check(range_check(S::Table, S::DefaultMaxConcurrentSessions, 1, 10))
                    .check(range_check(S::Table, S::SessionWarningMinutes, 1, 10))
                    .check(range_check(S::Table, S::SharedDeviceIdleTimeoutMinutes, 5, 120))
                    .check(range_check(
                        S::Table,
                        S::SharedDeviceAbsoluteTimeoutMinutes,
                        30,
                        1440,
                    ))
                    .check(range_check(S::Table, S::SharedDeviceMaxConcurrentSessions, 1, 10))
                    .take(),
            )
            .await?;
        // The single row. `updated_at` is bound as a chrono value so that it is
        // stored exactly as SeaORM stores `DateTimeUtc` (RFC 3339 text on
        // SQLite, TIMESTAMPTZ on PostgreSQL).
        let insert = Query::insert()
            .into_table(S::Table)
            .columns([S::Id, S::UpdatedAt])
            .values([Expr::val(1), Expr::val(ChronoUtc::now())])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .take();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SystemSettings::Table).take())
            .await
    }
}
