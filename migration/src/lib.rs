//! Schema migrations of the session-manager data model.
//!
//! [`Migrator`] lists one migration per table, in dependency order, then one
//! dated migration per later change. Foreign keys, unique and check
//! constraints are declared inside `CREATE TABLE` where SQLite needs them
//! there, so that the same migrations run on SQLite and PostgreSQL.
//!
//! The crate re-exports [`sea_orm_migration`] so that the server can call
//! `Migrator::up` / `down` / `status` without depending on it directly.

pub use sea_orm_migration;
pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod helpers;
mod m20261124_000001_create_tenants;
mod m20261124_000002_create_schools;
mod m20261124_000003_create_users;
mod m20261124_000004_create_tenant_memberships;
mod m20261124_000005_create_guardian_links;
mod m20261124_000006_create_sessions;
mod m20261124_000007_create_session_configs;
mod m20261124_000008_create_modules;
mod m20261124_000009_create_videos;
mod m20261124_000010_create_session_logs;
mod m20261124_000011_create_session_context_changes;
mod m20261124_000012_create_system_settings;
mod m20261124_000013_create_audit_logs;
mod m20261202_000014_move_school_to_memberships;
mod m20261202_000015_create_invitations;
mod m20261202_000016_create_login_throttles;
mod m20261202_000017_keep_audit_trail;
mod m20261202_000018_create_events;
mod m20261202_000019_create_event_log_state;
mod m20261202_000020_add_session_log_expiry_warning;
mod m20261203_000021_add_session_end_records;
mod m20261203_000022_create_lock_states;
mod m20261203_000023_create_webhook_endpoints;
mod m20261203_000024_create_webhook_deliveries;
mod m20261203_000025_create_webhook_attempts;
mod m20261206_000026_index_videos_by_module_in_order;

/// The migrator of the session-manager schema.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tenants::Migration),
            Box::new(m20261124_000002_create_schools::Migration),
            Box::new(m20261124_000003_create_users::Migration),
            Box::new(m20261124_000004_create_tenant_memberships::Migration),
            Box::new(m20261124_000005_create_guardian_links::Migration),
            Box::new(m20261124_000006_create_sessions::Migration),
            Box::new(m20261124_000007_create_session_configs::Migration),
            Box::new(m20261124_000008_create_modules::Migration),
            Box::new(m20261124_000009_create_videos::Migration),
            Box::new(m20261124_000010_create_session_logs::Migration),
            Box::new(m20261124_000011_create_session_context_changes::Migration),
            Box::new(m20261124_000012_create_system_settings::Migration),
            Box::new(m20261124_000013_create_audit_logs::Migration),
            Box::new(m20261202_000014_move_school_to_memberships::Migration),
            Box::new(m20261202_000015_create_invitations::Migration),
            Box::new(m20261202_000016_create_login_throttles::Migration),
            Box::new(m20261202_000017_keep_audit_trail::Migration),
            Box::new(m20261202_000018_create_events::Migration),
            Box::new(m20261202_000019_create_event_log_state::Migration),
            Box::new(m20261202_000020_add_session_log_expiry_warning::Migration),
            Box::new(m20261203_000021_add_session_end_records::Migration),
            Box::new(m20261203_000022_create_lock_states::Migration),
            Box::new(m20261203_000023_create_webhook_endpoints::Migration),
            Box::new(m20261203_000024_create_webhook_deliveries::Migration),
            Box::new(m20261203_000025_create_webhook_attempts::Migration),
            Box::new(m20261206_000026_index_videos_by_module_in_order::Migration),
        ]
    }
}
