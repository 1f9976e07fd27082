//! Guardian–user sessions and their content.

mod state;
mod types;

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::services::sessions::{self as service, SessionCursor};
pub use state::{SessionState, SessionStateQuery};
pub use types::{LockProfile, Module, Session, SessionConfig, SessionStatus, Video};

/// Session queries.
#[derive(Default)]
pub struct SessionsQuery;

/// A page of sessions.
pub type SessionConnection = Connection<OpaqueCursor<SessionCursor>, Session, EmptyFields, EmptyFields>;

#[Object]
impl SessionsQuery {
    /// Sessions, newest first, as a Relay cursor connection.
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size; defaults to the configured page size, at most the configured maximum.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<SessionConnection> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let paging = &state.settings.graphql;
        let limit = match first {
            None => paging.default_page_size,
            Some(first) if first < 1 => {
                return Err(AppError::bad_input("first", "must be at least 1").into());
            }
            Some(first) => u64::try_from(first).unwrap_or(u64::MAX),
        };
        if limit > paging.max_page_size {
            return Err(
                AppError::bad_input("first", format!("must be at most {}", paging.max_page_size)).into(),
            );
        }
        let after = after
            .map(|cursor| {
                OpaqueCursor::<SessionCursor>::decode_cursor(&cursor)
                    .map(|cursor| cursor.0)
                    .map_err(|_| AppError::bad_input("after", "is not a cursor returned by this API"))
            })
            .transpose()?;
        let page = service::page_sessions(&state.db, &scope, after, limit).await?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(
            page.sessions
                .into_iter()
                .map(|session| Edge::new(OpaqueCursor((session.created_at, session.id)), Session(session))),
        );
        Ok(connection)
    }

    /// One session by id.
    async fn session(&self, ctx: &Context<'_>, id: Uuid) -> Result<Session> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        Ok(Session(service::find_session(&state.db, &scope, id).await?))
    }
}

use async_graphql::connection::CursorType as _;
