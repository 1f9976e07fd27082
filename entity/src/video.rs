//! `videos`: videos of a module.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A video file of a module.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "videos")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning module.
    pub module_id: Uuid,
    /// Original file name.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub file_name: String,
    /// Where the file is served from.
    #[sea_orm(column_type = "String(StringLen::N(1024))")]
    pub file_url: String,
    /// Size in bytes, `>= 0`.
    pub file_size: i64,
    /// MIME type, e.g. `video/mp4`.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub mime_type: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning module.
    #[sea_orm(
        belongs_to = "super::module::Entity",
        from = "Column::ModuleId",
        to = "super::module::Column::Id",
        on_delete = "Cascade"
    )]
    Module,
}

impl Related<super::module::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Module.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
