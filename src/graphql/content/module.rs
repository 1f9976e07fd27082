//! The GraphQL view of a module: an ordered block of a session's content.

use async_graphql::{Object, Result};
use chrono::{DateTime, Utc};
use entity::module;
use uuid::Uuid;

use super::VideoList;
use crate::graphql::ContextExt;
use crate::graphql::loaders::VideosOfModule;

/// An ordered block of content within a session.
pub struct Module(pub module::Model);

#[Object(serial)]
impl Module {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Position within the session, from 0.
    async fn order_index(&self) -> i32 {
        self.0.order_index
    }
    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the row last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The module's videos, oldest first.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::services::content::MAX_VIDEOS_PER_MODULE, child_complexity)"
    )]
    async fn videos(&self, ctx: &async_graphql::Context<'_>) -> Result<VideoList> {
        Ok(VideoList(
            ctx.load_one(VideosOfModule(self.0.id)).await?.unwrap_or_default(),
        ))
    }
}
