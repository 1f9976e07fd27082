//! The GraphQL schema: per-domain objects merged into one root.

pub(crate) mod collect;
pub mod content;
pub(crate) mod fanout;
pub(crate) mod json;
pub mod limits;
pub mod loaders;
pub mod login_sessions;
pub mod notifications;
pub(crate) mod operation;
pub mod paging;
pub mod sessions;
pub mod settings;
pub mod tenancy;
pub mod viewer;
pub(crate) mod wire;

use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use sea_orm::DbErr;

use crate::auth::{Identity, UserIdentity};
use crate::error::AppError;
use crate::services::auth::ClientInfo;
use crate::services::live_identity::LiveIdentity;
use crate::services::scope::Scope;
pub use crate::state::AppState;
use loaders::{DbLoader, Loaders};

/// The root query: every domain's queries merged.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    tenancy::TenancyQuery,
    viewer::ViewerQuery,
    tenancy::TenantContextQuery,
    tenancy::AdminQuery,
    tenancy::InvitationQuery,
    login_sessions::LoginSessionsQuery,
    sessions::SessionsQuery,
    sessions::SessionStateQuery,
    sessions::LockStateQuery,
    notifications::WebhooksQuery,
    content::ContentQuery,
    settings::SettingsQuery,
);

/// The root mutation: every domain's mutations merged.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    login_sessions::LoginSessionsMutation,
    viewer::TenantContextMutation,
    tenancy::TenancyMutation,
    tenancy::AdminMutation,
    tenancy::InvitationMutation,
    sessions::SessionsMutation,
    notifications::WebhooksMutation,
    content::ContentMutation,
    settings::SettingsMutation,
);

/// The root subscription: every domain's subscriptions merged.
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    sessions::SessionsSubscription,
    sessions::LockStateSubscription,
    notifications::NotificationsSubscription,
    login_sessions::LoginSessionsSubscription,
);

/// The executable schema.
pub(crate) type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with its limits and long-lived data.
pub(crate) fn build_schema(state: AppState) -> AppSchema {
    let graphql = &state.settings.graphql;
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    // The gate measures every document before validation and enforces the
    // depth and cost limits itself, with codes; async-graphql's recursion
    // and directive checks stay as a backstop.
    .limit_recursive_depth(graphql.max_nesting)
    .limit_directives(graphql.max_directives)
    .extension(limits::RequestGate::new(graphql.clone(), state.gate.clone()))
    .extension(operation::OperationHooks);
    if !graphql.introspection {
        builder = builder.disable_introspection();
    }
    builder.data(state).finish()
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}

/// Typed access to the data every resolver needs.
pub(crate) trait ContextExt {
    /// The application state.
    fn state(&self) -> Result<&AppState, AppError>;
    /// The request's batching loaders.
    fn loaders(&self) -> Result<&Loaders, AppError>;
    /// Who is asking.
    fn identity(&self) -> &Identity;
    /// The logged-in user, or `UNAUTHENTICATED` / `FORBIDDEN` for anyone else.
    fn viewer(&self) -> Result<&Arc<UserIdentity>, AppError>;
    /// What the viewer may see; denies by default.
    fn scope(&self) -> Result<Scope, AppError>;
    /// What the transport knows about the client.
    fn client_info(&self) -> ClientInfo;
    /// Loads one value through the request's loaders.
    fn load_one<K>(
        &self,
        key: K,
    ) -> impl Future<Output = Result<Option<<DbLoader as Loader<K>>::Value>, AppError>> + Send
    where
        K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
        DbLoader: Loader<K, Error = Arc<DbErr>>;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> Result<&AppState, AppError> {
        self.data::<AppState>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("application state missing from schema data")))
    }

    fn loaders(&self) -> Result<&Loaders, AppError> {
        self.data::<Loaders>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("loaders missing from request data")))
    }

    fn identity(&self) -> &Identity {
        static ANONYMOUS: Identity = Identity::Anonymous;
        self.data::<Identity>().unwrap_or(&ANONYMOUS)
    }

    fn viewer(&self) -> Result<&Arc<UserIdentity>, AppError> {
        match self.identity() {
            Identity::User(viewer) => Ok(viewer),
            Identity::Anonymous => Err(AppError::login_required()),
            Identity::Rejected(reason) => Err(AppError::Unauthenticated(reason.clone())),
            Identity::Ended(reason) => Err(AppError::LoginSessionEnded(*reason)),
            Identity::NoAccess(reason) => Err(AppError::Forbidden(reason.clone())),
            Identity::Service(_) => Err(AppError::forbidden("services may not do this")),
        }
    }

    fn scope(&self) -> Result<Scope, AppError> {
        Scope::of(self.identity())
    }

    fn client_info(&self) -> ClientInfo {
        self.data::<ClientInfo>().cloned().unwrap_or_default()
    }

    async fn load_one<K>(&self, key: K) -> Result<Option<<DbLoader as Loader<K>>::Value>, AppError>
    where
        K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
        DbLoader: Loader<K, Error = Arc<DbErr>>,
    {
        self.loaders()?
            .load_one(key)
            .await
            .map_err(|error| AppError::internal(anyhow::anyhow!("batched load failed: {error}")))
    }
}

/// The connection's live view of its identity, which every subscription
/// consults (subscriptions are served over WebSocket only).
pub(crate) fn live_identity(ctx: &Context<'_>) -> Result<LiveIdentity, AppError> {
    ctx.data::<LiveIdentity>().cloned().map_err(|_| {
        AppError::forbidden("subscriptions are served over WebSocket (graphql-transport-ws) at /graphql/ws")
    })
}

/// What `pick` makes of each event of `feed`, in order, for a subscriber
/// that needs no per-event check of its own (a service); ends with the
/// feed, or with its first error.
pub(crate) fn feed_stream<T, F>(
    feed: crate::events::Feed,
    pick: F,
) -> futures_util::stream::BoxStream<'static, async_graphql::Result<T>>
where
    T: Send + 'static,
    F: Fn(&crate::events::Logged) -> Option<T> + Send + Sync + 'static,
{
    use futures_util::StreamExt;
    let pick = Arc::new(pick);
    futures_util::stream::unfold(Some(feed), move |feed| {
        let pick = pick.clone();
        async move {
            let mut feed = feed?;
            loop {
                match feed.next().await {
                    Ok(Some(logged)) => {
                        if let Some(item) = pick(&logged) {
                            return Some((Ok(item), Some(feed)));
                        }
                    }
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error.into()), None)),
                }
            }
        }
    })
    .boxed()
}

/// The event feed a subscription reads: replayed from `after` (an
/// `eventId`) and then live, or live from now.
///
/// A replay reads only `topics` of the viewer's active tenant (or of every
/// tenant, for per-user topics, when `tenant_id` is `None`).
pub(crate) async fn feed_after(
    state: &AppState,
    after: Option<&str>,
    topics: &'static [&'static str],
    tenant_id: Option<uuid::Uuid>,
) -> Result<crate::events::Feed, AppError> {
    let after = after.map(crate::events::decode_cursor).transpose()?;
    let only = crate::event_log::LogFilter {
        topics: Some(topics),
        tenant_id,
    };
    state.events.feed(after, only).await
}
