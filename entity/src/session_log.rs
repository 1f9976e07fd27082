//! `session_logs`: login sessions of users, each bound to an active tenant
//! context. A row is open while `logout_at` is `NULL`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Why a login session ended (column `session_logs.end_reason`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// The user logged out.
    #[sea_orm(string_value = "logout")]
    Logout,
    /// Revoked by the user or an administrator.
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// Evicted to respect the concurrent-session limit.
    #[sea_orm(string_value = "evicted")]
    Evicted,
    /// Invalidated by a new login (invalidate-on-login / shared device).
    #[sea_orm(string_value = "invalidated")]
    Invalidated,
    /// Idle timeout reached.
    #[sea_orm(string_value = "expired_idle")]
    ExpiredIdle,
    /// Absolute timeout reached.
    #[sea_orm(string_value = "expired_absolute")]
    ExpiredAbsolute,
}

/// A login session. `logout_at` and `end_reason` are both `NULL` (open) or
/// both set (ended).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "session_logs")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The authenticated user. No foreign key: a deleted user's login
    /// sessions stay, ended, with the id as data.
    pub user_id: Uuid,
    /// Active tenant context (`ON DELETE SET NULL`).
    pub tenant_id: Option<Uuid>,
    /// Login time.
    pub login_at: DateTimeUtc,
    /// Logout / end time; `None` while the session is open.
    pub logout_at: Option<DateTimeUtc>,
    /// Last request seen on this session (for the idle timeout).
    pub last_seen_at: DateTimeUtc,
    /// Client user agent.
    #[sea_orm(column_type = "Text", nullable)]
    pub user_agent: Option<String>,
    /// Client IP address.
    #[sea_orm(column_type = "String(StringLen::N(64))", nullable)]
    pub ip_address: Option<String>,
    /// Free-form device description.
    #[sea_orm(column_type = "Text", nullable)]
    pub device_info: Option<String>,
    /// Why the session ended; `None` while open.
    pub end_reason: Option<SessionEndReason>,
    /// The deadline an `EXPIRING_SOON` warning was last announced for, so
    /// each deadline is warned of once.
    pub expiry_warned_for: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The authenticated user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
    /// The active tenant context.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "SetNull"
    )]
    Tenant,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
