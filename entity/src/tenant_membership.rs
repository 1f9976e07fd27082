//! `tenant_memberships`: a user's membership (with a role) in a tenant, and
//! which tenant is the user's default.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Role of a user inside a tenant (column `tenant_memberships.role`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum MembershipRole {
    /// A supervised user.
    #[sea_orm(string_value = "member")]
    Member,
    /// A guardian, supervising the users linked to them.
    #[sea_orm(string_value = "guardian")]
    Guardian,
    /// A tenant administrator.
    #[sea_orm(string_value = "admin")]
    Admin,
}

/// A membership of a user in a tenant. `(user_id, tenant_id)` is unique and
/// at most one membership per user has `is_default`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tenant_memberships")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// The tenant.
    pub tenant_id: Uuid,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Whether this is the user's default tenant.
    pub is_default: bool,
    /// The member's school in this tenant, if any (`ON DELETE SET NULL`;
    /// the application keeps it a school of `tenant_id`).
    pub school_id: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The member.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    /// The tenant.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    /// The member's school in the tenant.
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolId",
        to = "super::school::Column::Id",
        on_delete = "SetNull"
    )]
    School,
}

impl Related<super::school::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::School.def()
    }
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
