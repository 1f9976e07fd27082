//! `webhook_endpoints`: where a tenant's notifications are delivered.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One endpoint of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant whose notifications it receives.
    pub tenant_id: Uuid,
    /// Where deliveries are POSTed (http or https).
    #[sea_orm(column_type = "String(StringLen::N(2048))")]
    pub url: String,
    /// What it is for, as its administrators describe it.
    #[sea_orm(column_type = "String(StringLen::N(255))", nullable)]
    pub description: Option<String>,
    /// The notification kinds it receives, e.g. `["UNLOCK"]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub kinds: Json,
    /// The signing secret (`whsec_` and base64).
    #[sea_orm(column_type = "String(StringLen::N(128))")]
    #[serde(skip_serializing)]
    pub secret: String,
    /// The secret it replaced, still signing until `previous_secret_expires_at`.
    #[sea_orm(column_type = "String(StringLen::N(128))", nullable)]
    #[serde(skip_serializing)]
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Whether new notifications are delivered to it.
    pub enabled: bool,
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
    /// Its deliveries.
    #[sea_orm(has_many = "super::webhook_delivery::Entity")]
    Delivery,
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Delivery.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
