//! The content of sessions: queries and mutations of modules and videos.
//!
//! Whoever has a session in scope (the user, their guardian, a tenant admin)
//! may read and change its content; anything else reads as `NOT_FOUND`.
//! The content of a session that has ended, expired or been revoked (or is
//! past its end time) is history: changing it is a `CONFLICT`. Every
//! mutation is one transaction; a failing one changes nothing.

mod lists;
mod module;
mod video;

use async_graphql::{Context, InputObject, Object, Result};
use uuid::Uuid;

use crate::graphql::ContextExt;
use crate::services::content::{self as service, NewVideo, VideoChanges};
use crate::unit_of_work::Outcome;
pub use lists::{ModuleList, VideoList};
pub use module::Module;
pub use video::{FileSize, Video};

/// Content queries.
#[derive(Default)]
pub(crate) struct ContentQuery;

#[Object(serial)]
impl ContentQuery {
    /// One module by id, if its session is in your scope.
    async fn module(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The module's id.")] id: Uuid,
    ) -> Result<Module> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        Ok(Module(service::find_module(&state.reads, &scope, id).await?))
    }

    /// One video by id, if its session is in your scope.
    async fn video(&self, ctx: &Context<'_>, #[graphql(desc = "The video's id.")] id: Uuid) -> Result<Video> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        Ok(Video(service::find_video(&state.reads, &scope, id).await?))
    }
}

/// A new module.
#[derive(InputObject)]
pub struct CreateModuleInput {
    /// Display name, 1–255 characters (trimmed).
    pub name: String,
    /// Where to insert it, from 0 (first) to the number of modules (last);
    /// the modules at and after it move down one. Omitted: appended.
    pub position: Option<i32>,
}

/// A new video of a module.
#[derive(InputObject)]
pub struct AddVideoInput {
    /// File name, 1–255 characters (trimmed), without `/`, `\` or control characters.
    pub file_name: String,
    /// Where the file is served from: an absolute `http://` or `https://` URL
    /// with a host, at most 1024 characters.
    pub file_url: String,
    /// Size in bytes, from 1 to the configured maximum (2 GiB by default).
    pub file_size: FileSize,
    /// MIME type, one of the configured video types (by default `video/mp4`,
    /// `video/webm`, `video/quicktime`, `video/ogg`, `video/x-matroska`,
    /// `video/mpeg`); case-insensitive, stored in lower case.
    pub mime_type: String,
}

/// Changes to a video: set the fields to change (at least one); omitted or
/// null fields keep their value. Each is validated as in `AddVideoInput`.
#[derive(InputObject, Default)]
pub struct UpdateVideoInput {
    /// New file name.
    pub file_name: Option<String>,
    /// New URL.
    pub file_url: Option<String>,
    /// New size in bytes.
    pub file_size: Option<FileSize>,
    /// New MIME type.
    pub mime_type: Option<String>,
}

/// Content mutations.
#[derive(Default)]
pub(crate) struct ContentMutation;

#[Object(serial)]
impl ContentMutation {
    /// Adds a module to a session, appended or at a position (the modules
    /// at and after it move down one). Returns the new module.
    async fn create_module(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session to add the module to.")] session_id: Uuid,
        #[graphql(desc = "The module's name and position.")] input: CreateModuleInput,
    ) -> Result<Module> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let created = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::create_module(
                    txn,
                    &scope,
                    state.clock.now(),
                    session_id,
                    &input.name,
                    input.position,
                )
                .await?,
            ))
        })
        .await?;
        Ok(Module(created))
    }

    /// Renames a module. Returns it.
    async fn rename_module(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The module to rename.")] id: Uuid,
        #[graphql(desc = "The new name, 1–255 characters (trimmed).")] name: String,
    ) -> Result<Module> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let renamed = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::rename_module(txn, &scope, now, id, &name).await?,
            ))
        })
        .await?;
        Ok(Module(renamed))
    }

    /// Moves a module to another position; the modules in between close up.
    /// Returns every module of the session in the new order.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::services::content::MAX_MODULES_PER_SESSION, child_complexity)"
    )]
    async fn move_module(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The module to move.")] id: Uuid,
        #[graphql(desc = "Its new position, from 0 (first) to the number of modules − 1 (last).")]
        position: i32,
    ) -> Result<ModuleList> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let modules = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::move_module(txn, &scope, state.clock.now(), id, position).await?,
            ))
        })
        .await?;
        Ok(modules.into())
    }

    /// Deletes a module and its videos; the modules after it move up one.
    /// Returns the session's remaining modules in order.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::services::content::MAX_MODULES_PER_SESSION, child_complexity)"
    )]
    async fn delete_module(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The module to delete.")] id: Uuid,
    ) -> Result<ModuleList> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let modules = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::delete_module(txn, &scope, state.clock.now(), id).await?,
            ))
        })
        .await?;
        Ok(modules.into())
    }

    /// Puts every module of a session in a new order. Returns them in that order.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::services::content::MAX_MODULES_PER_SESSION, child_complexity)"
    )]
    async fn reorder_modules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session whose modules to reorder.")] session_id: Uuid,
        #[graphql(
            desc = "The session's module ids in the new order: each of its modules exactly once, nothing else."
        )]
        module_ids: Vec<Uuid>,
    ) -> Result<ModuleList> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let modules = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::reorder_modules(txn, &scope, state.clock.now(), session_id, &module_ids).await?,
            ))
        })
        .await?;
        Ok(modules.into())
    }

    /// Adds a video to a module. Returns it.
    async fn add_video(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The module to add the video to.")] module_id: Uuid,
        #[graphql(desc = "The video's file name, URL, size and MIME type.")] input: AddVideoInput,
    ) -> Result<Video> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let input = NewVideo {
            file_name: input.file_name,
            file_url: input.file_url,
            file_size: input.file_size.0,
            mime_type: input.mime_type,
        };
        let added = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::add_video(
                    txn,
                    &scope,
                    &state.settings.content,
                    state.clock.now(),
                    module_id,
                    input,
                )
                .await?,
            ))
        })
        .await?;
        Ok(Video(added))
    }

    /// Changes a video's file name, URL, size or MIME type. Returns it.
    async fn update_video(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The video to change.")] id: Uuid,
        #[graphql(desc = "The fields to change.")] input: UpdateVideoInput,
    ) -> Result<Video> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let changes = VideoChanges {
            file_name: input.file_name,
            file_url: input.file_url,
            file_size: input.file_size.map(|size| size.0),
            mime_type: input.mime_type,
        };
        let updated = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::update_video(
                    txn,
                    &scope,
                    &state.settings.content,
                    state.clock.now(),
                    id,
                    changes,
                )
                .await?,
            ))
        })
        .await?;
        Ok(Video(updated))
    }

    /// Deletes a video. Returns it as it was.
    async fn delete_video(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The video to delete.")] id: Uuid,
    ) -> Result<Video> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let deleted = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::delete_video(txn, &scope, state.clock.now(), id).await?,
            ))
        })
        .await?;
        Ok(Video(deleted))
    }
}
