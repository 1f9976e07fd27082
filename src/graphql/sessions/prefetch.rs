//! Loads everything a page of sessions asks for in one batch per relation,
//! up front, into the request's loader cache.
//!
//! DataLoader batches by time (keys requested within a millisecond share a
//! statement), which on a busy machine can split one page into several
//! batches. Looking ahead at the selection and loading each requested
//! relation for the whole page at once makes the statement count a constant,
//! whatever the page size; the per-item resolvers then read the cache.

use std::collections::BTreeSet;

use async_graphql::Context;
use async_graphql::dataloader::Loader;
use entity::session;
use sea_orm::DbErr;
use std::sync::Arc;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{
    ConfigOfSession, DbLoader, ModulesOfSession, SchoolsOfTenant, TenantById, UserById, VideosOfModule,
};

async fn load_all<K>(
    ctx: &Context<'_>,
    keys: impl IntoIterator<Item = K>,
) -> Result<Vec<<DbLoader as Loader<K>>::Value>, AppError>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + Ord + 'static,
    DbLoader: Loader<K, Error = Arc<DbErr>>,
{
    let keys: BTreeSet<K> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let loaded = ctx
        .loaders()?
        .load_many(keys)
        .await
        .map_err(|error| AppError::internal(anyhow::anyhow!("batched load failed: {error}")))?;
    Ok(loaded.into_values().collect())
}

/// Prefetches the relations the current `sessions` selection asks for.
pub(crate) async fn prefetch(ctx: &Context<'_>, sessions: &[session::Model]) -> Result<(), AppError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let look = ctx.look_ahead();
    let nodes = [look.field("edges").field("node"), look.field("nodes")];
    let wants = |field: &str| nodes.iter().any(|node| node.field(field).exists());
    let wants_below =
        |field: &str, below: &str| nodes.iter().any(|node| node.field(field).field(below).exists());

    if wants("config") {
        let keys: Vec<ConfigOfSession> = sessions.iter().map(|row| ConfigOfSession(row.id)).collect();
        load_all(ctx, keys).await?;
    }
    if wants("user") || wants("guardian") {
        let mut people: Vec<UserById> = sessions.iter().map(|row| UserById(row.user_id)).collect();
        people.extend(sessions.iter().filter_map(|row| row.guardian_id).map(UserById));
        load_all(ctx, people).await?;
    }
    if wants("tenant") {
        let keys: Vec<TenantById> = sessions.iter().map(|row| TenantById(row.tenant_id)).collect();
        load_all(ctx, keys).await?;
        if wants_below("tenant", "schools") {
            let keys: Vec<SchoolsOfTenant> = sessions
                .iter()
                .map(|row| SchoolsOfTenant(row.tenant_id))
                .collect();
            load_all(ctx, keys).await?;
        }
    }
    if wants("modules") {
        let keys: Vec<ModulesOfSession> = sessions.iter().map(|row| ModulesOfSession(row.id)).collect();
        let modules = load_all(ctx, keys).await?;
        if wants_below("modules", "videos") {
            let module_ids: Vec<VideosOfModule> = modules
                .iter()
                .flat_map(|modules| modules.iter())
                .map(|module| VideosOfModule(module.id))
                .collect();
            load_all(ctx, module_ids).await?;
        }
    }
    Ok(())
}
