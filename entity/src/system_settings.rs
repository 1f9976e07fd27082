//! `system_settings`: the single-row (id = 1) table of runtime-configurable
//! system defaults for login-session settings.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The id of the only row of the table.
pub const SINGLETON_ID: i32 = 1;

/// System defaults; `None` values fall back to the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "system_settings")]
pub struct Model {
    /// Always [`SINGLETON_ID`] (enforced by `ck_system_settings_single_row`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Default idle timeout, 5..=120 minutes.
    pub default_idle_timeout_minutes: Option<i32>,
    /// Default absolute timeout, 30..=1440 minutes.
    pub default_absolute_timeout_minutes: Option<i32>,
    /// Default maximum concurrent login sessions, 1..=10.
    pub default_max_concurrent_sessions: Option<i32>,
    /// Default warning period before expiry, 1..=10 minutes.
    pub session_warning_minutes: Option<i32>,
    /// Idle timeout in shared-device mode, 5..=120 minutes.
    pub shared_device_idle_timeout_minutes: Option<i32>,
    /// Absolute timeout in shared-device mode, 30..=1440 minutes.
    pub shared_device_absolute_timeout_minutes: Option<i32>,
    /// Maximum concurrent login sessions in shared-device mode, 1..=10.
    pub shared_device_max_concurrent_sessions: Option<i32>,
    /// Always invalidate all sessions on login in shared-device mode.
    pub shared_device_always_invalidate_all_sessions: Option<bool>,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
    /// User who last modified the settings (`ON DELETE SET NULL`).
    pub updated_by: Option<Uuid>,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user who last modified the settings.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UpdatedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    UpdatedBy,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UpdatedBy.def()
    }
}

active_model_behavior!(updated: updated_at,);
