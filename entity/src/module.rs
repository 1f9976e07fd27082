//! `modules`: ordered content modules of a session.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A module; `(session_id, order_index)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "modules")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning session.
    pub session_id: Uuid,
    /// Display name.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    /// Position in the session, `>= 0`.
    pub order_index: i32,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning session.
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
    /// The module's videos.
    #[sea_orm(has_many = "super::video::Entity")]
    Video,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::video::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Video.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
