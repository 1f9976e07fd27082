//! `guardian_links`: a guardian supervising a user inside a tenant. Both must
//! be members of that tenant (composite foreign keys to `tenant_memberships`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A guardian → user link, unique per `(tenant_id, guardian_id, user_id)`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "guardian_links")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Tenant in which the link applies.
    pub tenant_id: Uuid,
    /// The supervising user.
    pub guardian_id: Uuid,
    /// The supervised user (never the guardian).
    pub user_id: Uuid,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The tenant.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    /// The supervising user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::GuardianId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    Guardian,
    /// The supervised user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
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

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
