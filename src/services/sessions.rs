//! Guardian–user sessions.

use chrono::{DateTime, Utc};
use entity::session;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::services::scope::Scope;

/// A position in the newest-first order of sessions.
pub type SessionCursor = (DateTime<Utc>, Uuid);

/// One page of sessions, newest first.
#[derive(Debug)]
pub struct SessionPage {
    /// The sessions of the page.
    pub sessions: Vec<session::Model>,
    /// Whether more sessions follow the page.
    pub has_next_page: bool,
}

/// Sessions newest first (`created_at DESC`, ties by id), after `after`.
pub async fn page_sessions(
    db: &impl ConnectionTrait,
    scope: &Scope,
    after: Option<SessionCursor>,
    limit: u64,
) -> AppResult<SessionPage> {
    let mut query = session::Entity::find()
        .filter(scope.sessions())
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .limit(limit + 1);
    if let Some((created_at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(session::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(session::Column::CreatedAt.eq(created_at))
                        .add(session::Column::Id.lt(id)),
                ),
        );
    }
    let mut sessions = query.all(db).await?;
    let has_next_page = sessions.len() as u64 > limit;
    sessions.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(SessionPage {
        sessions,
        has_next_page,
    })
}

/// One session in scope; out of scope reads as not found.
pub async fn find_session(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<session::Model> {
    session::Entity::find_by_id(id)
        .filter(scope.sessions())
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "session" })
}
