//! `event_log_state`: how far retention has swept the event log (one row).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The single row (`id` = 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "event_log_state")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i16,
    /// Every event with an id up to this one has been deleted; a cursor
    /// below it has missed events.
    pub swept_through: i64,
}

/// Relations of [`Model`]: none.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
