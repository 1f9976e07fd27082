//! `audit_logs`: append-only audit trail (e.g. session-settings changes).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Tenant concerned, if any (`ON DELETE SET NULL`).
    pub tenant_id: Option<Uuid>,
    /// User who performed the action, if any (`ON DELETE SET NULL`).
    pub actor_id: Option<Uuid>,
    /// Action name, e.g. `UpdateDistrictSessionSettings`.
    #[sea_orm(column_type = "String(StringLen::N(64))")]
    pub action: String,
    /// Resource, e.g. `District:{id}`.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub resource: String,
    /// Details, e.g. `{Property}: {OldValue} → {NewValue}`.
    #[sea_orm(column_type = "Text")]
    pub details: String,
    /// When the action happened.
    pub created_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The tenant concerned.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "SetNull"
    )]
    Tenant,
    /// The acting user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::ActorId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Actor,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Actor.def()
    }
}

active_model_behavior!(id: id, created: created_at,);
