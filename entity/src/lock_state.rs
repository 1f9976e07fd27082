//! `lock_states`: the merged lock state last announced for each user.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The lock state last announced for one user (across all their tenants).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "lock_states")]
pub struct Model {
    /// The user (data, not a foreign key: the row outlives the account long
    /// enough to announce that nothing is locked any more).
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The merged state (`jsonb` on PostgreSQL).
    #[sea_orm(column_type = "JsonBinary")]
    pub state: Json,
    /// When it was announced.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`]: none.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
