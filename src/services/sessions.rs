//! Guardian–user sessions.

use chrono::{DateTime, Utc};
use entity::session::{self, SessionStatus};
use entity::session_config;
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

/// Whether a session is in force at `now`: active and not past its end time.
pub fn is_in_force(session: &session::Model, now: DateTime<Utc>) -> bool {
    session.status == SessionStatus::Active && session.end_time.is_none_or(|end| end > now)
}

/// Who may ask about session state: another service (any session), or a
/// user within their scope.
#[derive(Debug, Clone, Copy)]
pub enum StateReader<'a> {
    /// A configured service: every session.
    Service,
    /// A logged-in user: sessions in scope.
    User(&'a Scope),
}

/// One session and its config, for the session-state queries of other services.
pub async fn session_state(
    db: &impl ConnectionTrait,
    reader: StateReader<'_>,
    id: Uuid,
) -> AppResult<(session::Model, Option<session_config::Model>)> {
    let mut query = session::Entity::find_by_id(id).find_also_related(session_config::Entity);
    if let StateReader::User(scope) = reader {
        query = query.filter(scope.sessions());
    }
    query
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "session" })
}

/// The session of `user_id` in force at `now`, if any (the newest when several).
pub async fn active_session_of(
    db: &impl ConnectionTrait,
    reader: StateReader<'_>,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Option<(session::Model, Option<session_config::Model>)>> {
    let mut query = session::Entity::find()
        .find_also_related(session_config::Entity)
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Status.eq(SessionStatus::Active))
        .filter(
            Condition::any()
                .add(session::Column::EndTime.is_null())
                .add(session::Column::EndTime.gt(now)),
        )
        .order_by_desc(session::Column::StartTime)
        .order_by_desc(session::Column::Id);
    if let StateReader::User(scope) = reader {
        query = query.filter(scope.sessions());
    }
    Ok(query.one(db).await?)
}
