//! `sessions`: guardian–user sessions (an enforcement period of a user,
//! optionally supervised by a guardian) with their ordered content.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Status of a guardian–user session (column `sessions.status`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Running.
    #[sea_orm(string_value = "active")]
    Active,
    /// Ended normally.
    #[sea_orm(string_value = "ended")]
    Ended,
    /// Ran past its end time.
    #[sea_orm(string_value = "expired")]
    Expired,
    /// Terminated by a guardian or an administrator.
    #[sea_orm(string_value = "revoked")]
    Revoked,
}

/// How a session ended (column `sessions.end_kind`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum SessionEndKind {
    /// The supervised user ended it before its planned end (or at any time
    /// when it had none): an unlock.
    #[sea_orm(string_value = "unlocked_early")]
    UnlockedEarly,
    /// Its guardian ended it.
    #[sea_orm(string_value = "ended_by_guardian")]
    EndedByGuardian,
    /// An administrator ended it.
    #[sea_orm(string_value = "ended_by_admin")]
    EndedByAdmin,
    /// A guardian or an administrator revoked it.
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// It reached its planned end.
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// A guardian–user session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The supervised user.
    pub user_id: Uuid,
    /// The supervising guardian, if any.
    pub guardian_id: Option<Uuid>,
    /// Display name.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    /// Kind of session (DB default `'Linear Flow'`).
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub session_type: String,
    /// Lifecycle status (DB default `'active'`).
    pub status: SessionStatus,
    /// Start of the session.
    pub start_time: DateTimeUtc,
    /// End of the session (scheduled or actual); `>= start_time`.
    pub end_time: Option<DateTimeUtc>,
    /// The scheduled end, as last set; ending the session keeps it.
    pub planned_end_time: Option<DateTimeUtc>,
    /// When the session actually ended (none while active).
    pub ended_at: Option<DateTimeUtc>,
    /// The person who ended or revoked it (none for an expiry).
    pub ended_by: Option<Uuid>,
    /// How it ended (none while active, and for sessions ended before this
    /// was recorded).
    pub end_kind: Option<SessionEndKind>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning tenant.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    /// The supervised user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    /// The supervising guardian.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::GuardianId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    Guardian,
    /// The person who ended it.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::EndedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    EndedBy,
    /// The optional per-session configuration.
    #[sea_orm(has_one = "super::session_config::Entity")]
    SessionConfig,
    /// The ordered modules of the session.
    #[sea_orm(has_many = "super::module::Entity")]
    Module,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

/// The supervised user (`user_id`); use [`Relation::Guardian`] for the guardian.
impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::session_config::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SessionConfig.def()
    }
}

impl Related<super::module::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Module.def()
    }
}

/// Videos of the session's modules (via `modules`).
impl Related<super::video::Entity> for Entity {
    fn to() -> RelationDef {
        super::module::Relation::Video.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::module::Relation::Session.def().rev())
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
