//! `events`: the durable event log.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One announced event. Ids grow in commit order (the application appends
/// under a lock on PostgreSQL), so a reader that has seen id N has seen
/// every event before it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The cursor.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// What kind of event, e.g. `SESSION`.
    #[sea_orm(column_type = "String(StringLen::N(32))")]
    pub topic: String,
    /// The tenant it concerns, if any (data, no foreign key).
    pub tenant_id: Option<Uuid>,
    /// The event itself (`jsonb` on PostgreSQL).
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// When it was appended.
    pub created_at: DateTimeUtc,
}

/// Relations of [`Model`]: none (ids are data).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
