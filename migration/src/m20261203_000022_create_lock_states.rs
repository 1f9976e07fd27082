//! `lock_states`: the merged lock state last announced for each supervised
//! user (a device has one lock state, across every tenant), so that a write
//! announces a `LOCK_STATE` event only when that state really changed, once.
//! `user_id` is data, not a foreign key: when an account is deleted, the
//! empty state is announced against its last row, which then goes. A user
//! without a row has never been announced: their next change announces
//! whatever their state is then.

use sea_orm_migration::prelude::*;

use crate::helpers::{timestamp, uuid_pk};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Identifiers of the `lock_states` table.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum LockStates {
    Table,
    UserId,
    State,
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
                    .table(LockStates::Table)
                    .col(uuid_pk(LockStates::UserId))
                    .col(ColumnDef::new(LockStates::State).json_binary().not_null())
                    .col(timestamp(LockStates::UpdatedAt))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LockStates::Table).take())
            .await
    }
}
