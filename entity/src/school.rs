//! `schools`: schools of a tenant (district), with school-level session
//! settings overrides.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A school. `None` settings inherit from its tenant (district).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "schools")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant (district).
    pub tenant_id: Uuid,
    /// Display name, unique within the tenant.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    /// Shared-device mode of the school.
    pub is_shared_device_mode: Option<bool>,
    /// Idle timeout override, 5..=120 minutes.
    pub session_idle_timeout_minutes: Option<i32>,
    /// Absolute timeout override, 30..=1440 minutes.
    pub session_absolute_timeout_minutes: Option<i32>,
    /// Maximum concurrent login sessions per user, 1..=10.
    pub max_concurrent_sessions: Option<i32>,
    /// Revoke all of a user's login sessions on a new login.
    pub invalidate_all_sessions_on_login: Option<bool>,
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
    /// Memberships attached to the school.
    #[sea_orm(has_many = "super::tenant_membership::Entity")]
    TenantMembership,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::tenant_membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TenantMembership.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
