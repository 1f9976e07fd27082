//! `session_context_changes`: append-only audit trail of tenant-context
//! changes. It outlives the users and tenants it mentions.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Kind of tenant-context change (column `session_context_changes.event_type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContextChangeEventType {
    /// The user switched to another tenant.
    #[sea_orm(string_value = "SWITCH_TENANT")]
    SwitchTenant,
    /// The user changed their default tenant.
    #[sea_orm(string_value = "SET_DEFAULT_TENANT")]
    SetDefaultTenant,
    /// The default tenant was applied because no context was set.
    #[sea_orm(string_value = "APPLY_DEFAULT_TENANT")]
    ApplyDefaultTenant,
    /// The context was reset to the default tenant after access was lost.
    #[sea_orm(string_value = "RESET_TO_DEFAULT_TENANT")]
    ResetToDefaultTenant,
}

/// One tenant-context change event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "session_context_changes")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user whose context changed. No foreign key: the row and the id
    /// stay when the user is deleted.
    pub user_id: Uuid,
    /// The tenant the event refers to (the new context / default). No
    /// foreign key: the row and the id stay when the tenant is deleted.
    pub tenant_id: Uuid,
    /// Kind of change.
    pub event_type: ContextChangeEventType,
    /// Additional details (`jsonb` on PostgreSQL), e.g. the previous tenant.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    /// When the change happened.
    pub created_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user whose context changed.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
    /// The tenant the event refers to.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id"
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

active_model_behavior!(id: id, created: created_at,);
