//! `webhook_deliveries`: one notification for one endpoint.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a delivery is (column `webhook_deliveries.status`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet delivered: waiting for its next attempt.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The endpoint answered 2xx: never sent again unless redelivered.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Given up after the configured number of attempts.
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// One delivery.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Primary key (UUIDv7: in creation order).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The endpoint's tenant.
    pub tenant_id: Uuid,
    /// The `webhook-id` header: the event's id (`ev42`), or the ping's.
    #[sea_orm(column_type = "String(StringLen::N(64))")]
    pub message_id: String,
    /// The notification kind, e.g. `UNLOCK` or `PING`.
    #[sea_orm(column_type = "String(StringLen::N(32))")]
    pub kind: String,
    /// Deliveries of one endpoint with the same key (the supervised user)
    /// are made in `sequence` order; none for a ping.
    pub ordering_key: Option<Uuid>,
    /// The event's position in the log (0 for a ping).
    pub sequence: i64,
    /// The body, exactly as it is sent and signed.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is next attempted (pending only).
    pub next_attempt_at: Option<DateTimeUtc>,
    /// An instance is attempting it until then.
    pub leased_until: Option<DateTimeUtc>,
    /// The status code of the last attempt, if it got an answer.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, if it did.
    #[sea_orm(column_type = "String(StringLen::N(500))", nullable)]
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
    /// When it succeeded or was given up.
    pub completed_at: Option<DateTimeUtc>,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The endpoint.
    #[sea_orm(
        belongs_to = "super::webhook_endpoint::Entity",
        from = "Column::EndpointId",
        to = "super::webhook_endpoint::Column::Id",
        on_delete = "Cascade"
    )]
    Endpoint,
    /// Its attempts.
    #[sea_orm(has_many = "super::webhook_attempt::Entity")]
    Attempt,
}

impl Related<super::webhook_endpoint::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Endpoint.def()
    }
}

impl Related<super::webhook_attempt::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Attempt.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
