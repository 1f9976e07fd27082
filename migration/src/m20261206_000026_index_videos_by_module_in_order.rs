//! Videos are read a page of modules at a time, each module's in the order
//! they were added: an index on `(module_id, created_at, id)` hands them out
//! in that order, so the read needs no sort. It replaces the index on
//! `module_id` alone: it starts with that column, so it serves what that
//! index served (the foreign key's cascades included).

use sea_orm_migration::prelude::*;

use crate::helpers::index;
use crate::m20261124_000009_create_videos::Videos;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const IN_ORDER: &str = "idx_videos_module_in_order";
const BY_MODULE: &str = "idx_videos_module_id";

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                IN_ORDER,
                Videos::Table,
                [Videos::ModuleId, Videos::CreatedAt, Videos::Id],
            ))
            .await?;
        manager
            .drop_index(Index::drop().name(BY_MODULE).table(Videos::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(BY_MODULE, Videos::Table, [Videos::ModuleId]))
            .await?;
        manager
            .drop_index(Index::drop().name(IN_ORDER).table(Videos::Table).to_owned())
            .await
    }
}
