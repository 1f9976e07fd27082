//! `webhook_attempts`: every attempt of a delivery.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The delivery.
    pub delivery_id: Uuid,
    /// Which attempt (from 1).
    pub attempt: i32,
    /// When it was made.
    pub attempted_at: DateTimeUtc,
    /// The status code answered, if any.
    pub status_code: Option<i32>,
    /// Why it failed without an answer, or what the answer said.
    #[sea_orm(column_type = "String(StringLen::N(500))", nullable)]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i32,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The delivery.
    #[sea_orm(
        belongs_to = "super::webhook_delivery::Entity",
        from = "Column::DeliveryId",
        to = "super::webhook_delivery::Column::Id",
        on_delete = "Cascade"
    )]
    Delivery,
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Delivery.def()
    }
}

active_model_behavior!(id: id,);
