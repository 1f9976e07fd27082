//! `users`: every account (supervised users, guardians, admins).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Login e-mail, unique, stored lower-case by the application.
    #[sea_orm(column_type = "String(StringLen::N(320))", unique)]
    pub email: String,
    /// Display name.
    #[sea_orm(column_type = "String(StringLen::N(255))", nullable)]
    pub name: Option<String>,
    /// Password hash (PHC string). Never serialized.
    #[sea_orm(column_type = "Text")]
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    /// System-wide super administrator.
    pub is_super_admin: bool,
    /// Per-user concurrent login sessions override, 1..=10.
    pub max_concurrent_sessions: Option<i32>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user's tenant memberships.
    #[sea_orm(has_many = "super::tenant_membership::Entity")]
    TenantMembership,
    /// Sessions in which the user is the supervised user.
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    /// Sessions in which the user is the guardian.
    #[sea_orm(has_many = "super::session::Entity", via_rel = "Relation::Guardian")]
    GuardedSession,
    /// Guardian links in which the user is the supervised user.
    #[sea_orm(has_many = "super::guardian_link::Entity")]
    GuardianLink,
    /// Guardian links in which the user is the guardian.
    #[sea_orm(has_many = "super::guardian_link::Entity", via_rel = "Relation::Guardian")]
    SupervisedLink,
    /// The user's login sessions (kept, with the id as data, when the user
    /// is deleted).
    #[sea_orm(has_many = "super::session_log::Entity")]
    SessionLog,
    /// The user's tenant-context changes.
    #[sea_orm(has_many = "super::session_context_change::Entity")]
    SessionContextChange,
    /// Audit records of actions performed by the user.
    #[sea_orm(has_many = "super::audit_log::Entity")]
    AuditLog,
}

impl Related<super::tenant_membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TenantMembership.def()
    }
}

/// Sessions in which the user is the supervised user (`sessions.user_id`).
impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

/// Guardian links in which the user is the supervised user
/// (`guardian_links.user_id`).
impl Related<super::guardian_link::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GuardianLink.def()
    }
}

impl Related<super::session_log::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SessionLog.def()
    }
}

impl Related<super::session_context_change::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SessionContextChange.def()
    }
}

impl Related<super::audit_log::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuditLog.def()
    }
}

/// Tenants the user is a member of (via `tenant_memberships`).
impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        super::tenant_membership::Relation::Tenant.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::tenant_membership::Relation::User.def().rev())
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
