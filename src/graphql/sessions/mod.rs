//! Guardian–user sessions: queries, the lifecycle mutations, and live status
//! subscriptions.

mod inputs;
mod live;
mod lock_state;
mod prefetch;
mod state;
mod types;

use crate::unit_of_work::write;
use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::paging::{decode_after, page_limit};
use crate::services::scope::Scope;
use crate::services::sessions::{self as service, SessionFilter, SessionOrder, SortValue, Transition};
pub use inputs::{
    ConfigInput, CreateSessionInput, LockProfileInput, OrderDirection, SessionFilterInput, SessionOrderBy,
    SessionOrderField, StartSessionInput, UnlockFilterInput, UpdateSessionInput,
};
pub(crate) use live::SHARED_FIELDS;
pub use live::{SessionChangeKind, SessionStatusEvent, SessionsSubscription, UnlockNotification};
pub use lock_state::{LockState, LockStateQuery, LockStateSession, LockStateSubscription, LockedApp};
pub use state::{SessionState, SessionStateQuery};
pub use types::{LockProfile, Module, Session, SessionConfig, SessionEndKind, SessionStatus, Video};

/// Session queries.
#[derive(Default)]
pub(crate) struct SessionsQuery;

/// A position in a session listing.
type Cursor = OpaqueCursor<(SortValue, Uuid)>;

/// Extra fields of a page of sessions.
pub(crate) struct SessionConnectionFields {
    scope: Scope,
    filter: SessionFilter,
    now: DateTime<Utc>,
}

#[Object(serial)]
impl SessionConnectionFields {
    /// How many sessions match the filter, over all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let state = ctx.state()?;
        Ok(service::count_sessions(&state.reads, &self.scope, &self.filter, self.now).await?)
    }
}

/// A page of sessions.
pub(crate) type SessionConnection = Connection<Cursor, Session, SessionConnectionFields, EmptyFields>;

#[Object(serial)]
impl SessionsQuery {
    /// Sessions you may see, as a Relay cursor connection; newest first
    /// unless `orderBy` says otherwise.
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which sessions.")] filter: Option<SessionFilterInput>,
        #[graphql(desc = "Sort order; ties are broken by id.")] order_by: Option<SessionOrderBy>,
        #[graphql(desc = "Page size; defaults to the configured page size, at most the configured maximum.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<SessionConnection> {
        let filter = filter
            .map(SessionFilterInput::into_filter)
            .transpose()?
            .unwrap_or_default();
        let order: SessionOrder = order_by.map(Into::into).unwrap_or_default();
        page(ctx, ctx.scope()?, filter, order, first, after).await
    }

    /// Past unlocks (sessions the supervised user ended early), newest
    /// first: for guardians (of the users they supervise) and
    /// administrators (of the tenant).
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn unlocks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which unlocks.")] filter: Option<UnlockFilterInput>,
        #[graphql(desc = "Page size; defaults to the configured page size, at most the configured maximum.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<SessionConnection> {
        let scope = ctx.scope()?;
        if scope.reach == crate::services::scope::Reach::Own {
            return Err(AppError::forbidden("unlocks are listed for guardians and administrators").into());
        }
        let filter = filter.unwrap_or_default().into_filter()?;
        let order = SessionOrder {
            field: service::SessionOrderField::EndedAt,
            direction: service::OrderDirection::Desc,
        };
        page(ctx, scope, filter, order, first, after).await
    }

    /// One session by id.
    async fn session(&self, ctx: &Context<'_>, id: Uuid) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        Ok(Session(service::find_session(&state.reads, &scope, id).await?))
    }
}

/// One page of the sessions in `scope` matching `filter`, in `order`.
async fn page(
    ctx: &Context<'_>,
    scope: Scope,
    filter: SessionFilter,
    order: SessionOrder,
    first: Option<i32>,
    after: Option<String>,
) -> Result<SessionConnection> {
    let state = ctx.state()?;
    let limit = page_limit(first, &state.settings.graphql)?;
    let after: Option<(SortValue, Uuid)> = decode_after(after)?;
    let now = state.clock.now();
    let has_previous = after.is_some();
    let page = service::page_sessions(&state.reads, &scope, &filter, order, after, limit, now).await?;
    prefetch::prefetch(ctx, &page.sessions).await?;
    let mut connection = Connection::with_additional_fields(
        has_previous,
        page.has_next_page,
        SessionConnectionFields { scope, filter, now },
    );
    connection.edges.extend(page.sessions.into_iter().map(|session| {
        Edge::new(
            OpaqueCursor((order.key_of(&session), session.id)),
            Session(session),
        )
    }));
    Ok(connection)
}

/// Session mutations. Each runs in one transaction and announces its
/// change to subscribers once committed.
#[derive(Default)]
pub(crate) struct SessionsMutation;

#[Object(serial)]
impl SessionsMutation {
    /// A guardian (or a tenant admin) starts a session for a user they
    /// supervise, now, optionally with an end time or duration and a config.
    async fn start_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The supervised user.")] user_id: Uuid,
        #[graphql(
            desc = "The supervising guardian: yourself if you are a guardian; any guardian of the user for an admin; none for an admin-run session."
        )]
        guardian_id: Option<Uuid>,
        input: Option<StartSessionInput>,
    ) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let input = input.map(StartSessionInput::into_new_session).unwrap_or_default();
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(
                service::start_session(txn, &scope, user_id, guardian_id, input, now)
                    .await?
                    .into(),
            )
        })
        .await?;
        Ok(Session(row))
    }

    /// Creates a session of your own (document 001), starting now.
    async fn create_session(&self, ctx: &Context<'_>, input: CreateSessionInput) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(
                service::create_session(txn, &scope, input.into_new_session(), now)
                    .await?
                    .into(),
            )
        })
        .await?;
        Ok(Session(row))
    }

    /// Changes the name, type or end time of an active session.
    async fn update_session(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateSessionInput,
    ) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(service::update_session(txn, &scope, id, input.into(), now)
                .await?
                .into())
        })
        .await?;
        Ok(Session(row))
    }

    /// Ends an active session now. Ending it before its end time is an
    /// unlock: its guardian is notified when the config asks for it.
    async fn end_session(&self, ctx: &Context<'_>, id: Uuid) -> Result<Session> {
        self.change(ctx, id, Transition::End).await
    }

    /// Revokes an active session (guardians and administrators).
    async fn revoke_session(&self, ctx: &Context<'_>, id: Uuid) -> Result<Session> {
        self.change(ctx, id, Transition::Revoke).await
    }

    /// Deletes a session with its config, modules and videos. Returns its id.
    async fn delete_session(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(service::delete_session(txn, &scope, id, now).await?.into())
        })
        .await?;
        Ok(row.id)
    }

    /// Sets the config of an active session (created when it has none);
    /// omitted fields keep their value.
    async fn set_session_config(
        &self,
        ctx: &Context<'_>,
        session_id: Uuid,
        input: ConfigInput,
    ) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(
                service::configure_session(txn, &scope, session_id, input.into(), now)
                    .await?
                    .into(),
            )
        })
        .await?;
        Ok(Session(row))
    }
}

impl SessionsMutation {
    async fn change(&self, ctx: &Context<'_>, id: Uuid, transition: Transition) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(service::transition(txn, &scope, id, transition, now)
                .await?
                .into())
        })
        .await?;
        Ok(Session(row))
    }
}
