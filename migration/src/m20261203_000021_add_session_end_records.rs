//! End records of sessions: `planned_end_time` (the scheduled end, which
//! ending a session no longer overwrites), `ended_at` (the actual end),
//! `ended_by` (the person who ended it) and `end_kind` (how it ended).
//!
//! Existing rows get what can be known of them: the planned end of active
//! and expired sessions (whose `end_time` was never overwritten), the end
//! and its kind of expired and revoked ones, and the end of ended ones
//! (whether those were unlocked early or ended by a guardian was not
//! recorded, so their kind stays `NULL`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::helpers::{index, timestamp_null};
use crate::m20261124_000006_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The new columns of `sessions`.
#[derive(DeriveIden, Clone, Copy)]
enum EndRecord {
    PlannedEndTime,
    EndedAt,
    EndedBy,
    EndKind,
}

/// The values `end_kind` may hold.
const END_KINDS: &str = "'unlocked_early', 'ended_by_guardian', 'ended_by_admin', 'revoked', 'expired'";

#[expect(
    elided_lifetimes_in_paths,
    reason = "`MigrationTrait` takes `&SchemaManager`; `<'_>` would fail with E0195 under async_trait"
)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time; column-level
        // constraints, which both backends accept in `ADD COLUMN`.
        for (name, column) in [
            ("planned_end_time", timestamp_null(EndRecord::PlannedEndTime)),
            ("ended_at", timestamp_null(EndRecord::EndedAt)),
            ("ended_by", ColumnDef::new(EndRecord::EndedBy)
                .uuid()
                .null()
                .extra("CONSTRAINT fk_sessions_ended_by REFERENCES users (id) ON DELETE SET NULL")
                .take()),
            ("end_kind", ColumnDef::new(EndRecord::EndKind)
                .string_len(32)
                .null()
                .extra(format!(
                    "CONSTRAINT ck_sessions_end_kind CHECK (end_kind IS NULL OR end_kind IN ({END_KINDS}))"
                ))
                .take()),
        ] {
            // Left in place by `down` on SQLite (see there).
            if manager.has_column("sessions", name).await? {
                continue;
            }
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        let connection = manager.get_connection();
        for fill in [
            "UPDATE sessions SET planned_end_time = end_time WHERE status IN ('active', 'expired')",
            "UPDATE sessions SET ended_at = end_time, end_kind = 'expired' WHERE status = 'expired'",
            "UPDATE sessions SET ended_at = COALESCE(end_time, updated_at), end_kind = 'revoked' WHERE status = 'revoked'",
            "UPDATE sessions SET ended_at = COALESCE(end_time, updated_at) WHERE status = 'ended'",
        ] {
            connection.execute_unprepared(fill).await?;
        }
        // Past unlocks of a tenant, newest first.
        manager
            .create_index(index(
                "idx_sessions_tenant_end_kind_ended_at",
                Sessions::Table,
                [
                    Sessions::TenantId.into_iden(),
                    EndRecord::EndKind.into_iden(),
                    EndRecord::EndedAt.into_iden(),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_sessions_ended_by",
                Sessions::Table,
                [EndRecord::EndedBy],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_sessions_tenant_end_kind_ended_at", "idx_sessions_ended_by"] {
            manager
                .drop_index(Index::drop().name(name).table(Sessions::Table).to_owned())
                .await?;
        }
        // What ending overwrote comes back from the planned end where it is
        // known: the old model kept only one end time.
        let connection = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for column in [
                EndRecord::PlannedEndTime,
                EndRecord::EndedAt,
                EndRecord::EndedBy,
                EndRecord::EndKind,
            ] {
                manager
                    .alter_table(Table::alter().table(Sessions::Table).drop_column(column).take())
                    .await?;
            }
        } else {
            // SQLite cannot drop a column under a foreign key or a check
            // without rebuilding `sessions`, which other tables reference:
            // the columns stay, emptied, and `up` reuses them.
            connection
                .execute_unprepared(
                    "UPDATE sessions SET planned_end_time = NULL, ended_at = NULL, ended_by = NULL, end_kind = NULL",
                )
                .await?;
        }
        Ok(())
    }
}
