//! Login sessions (`session_logs`): the device list, revocation.

use chrono::{DateTime, Utc};
use entity::session_log::{self, SessionEndReason};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::{AppError, AppResult};
use crate::services::auth::end_login_session;
use crate::services::login_policy::ended_event;
use crate::services::scope::Scope;
use crate::unit_of_work::Outcome;

/// Which login sessions to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginSessionFilter {
    /// Only this user's.
    pub user_id: Option<Uuid>,
    /// Only those still open.
    pub active_only: bool,
}

/// Login sessions in scope, newest first, at most `limit`.
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: LoginSessionFilter,
    limit: u64,
) -> AppResult<Vec<session_log::Model>> {
    let mut query = session_log::Entity::find()
        .filter(scope.login_sessions())
        .order_by_desc(session_log::Column::LoginAt)
        .order_by_desc(session_log::Column::Id)
        .limit(limit);
    if let Some(user_id) = filter.user_id {
        query = query.filter(session_log::Column::UserId.eq(user_id));
    }
    if filter.active_only {
        query = query.filter(session_log::Column::LogoutAt.is_null());
    }
    Ok(query.all(db).await?)
}

/// The viewer's own login sessions, newest first.
pub(crate) async fn list_own(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    active_only: bool,
    limit: u64,
) -> AppResult<Vec<session_log::Model>> {
    let mut query = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(user_id))
        .order_by_desc(session_log::Column::LoginAt)
        .order_by_desc(session_log::Column::Id)
        .limit(limit);
    if active_only {
        query = query.filter(session_log::Column::LogoutAt.is_null());
    }
    Ok(query.all(db).await?)
}

/// Revokes one login session the viewer may manage: their own, or (for an
/// admin) one of a member of their tenant. Revoking an ended session changes
/// nothing (and announces nothing). Returns the session.
pub async fn revoke(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer_user_id: Uuid,
    scope: Option<&Scope>,
    id: Uuid,
) -> AppResult<Outcome<session_log::Model>> {
    let mut query = session_log::Entity::find_by_id(id);
    query = match scope {
        Some(scope) => query.filter(scope.login_sessions()),
        None => query.filter(session_log::Column::UserId.eq(viewer_user_id)),
    };
    let log = query.one(db).await?.ok_or(AppError::NotFound {
        resource: "login session",
    })?;
    let newly = end_login_session(db, now, log.id, SessionEndReason::Revoked).await?;
    tracing::info!(login_session_id = %log.id, by = %viewer_user_id, "login session revoked");
    let log = session_log::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "login session",
        })?;
    let events = if newly {
        vec![ended_event(
            log.id,
            log.user_id,
            SessionEndReason::Revoked,
            None,
            now,
        )]
    } else {
        Vec::new()
    };
    Ok(Outcome::announcing(log, events))
}

/// Ends the viewer's own login session (logout); whether it was open.
pub async fn logout(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
) -> AppResult<Outcome<bool>> {
    let ended = end_login_session(db, now, viewer.login_session_id, SessionEndReason::Logout).await?;
    let events = if ended {
        vec![ended_event(
            viewer.login_session_id,
            viewer.user_id,
            SessionEndReason::Logout,
            None,
            now,
        )]
    } else {
        Vec::new()
    };
    Ok(Outcome::announcing(ended, events))
}

/// [`revoke_others`], announced: how many it ended.
pub(crate) async fn revoke_others_announced(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> AppResult<Outcome<usize>> {
    let ended = revoke_others(db, now, user_id, keep).await?;
    let events = ended
        .iter()
        .map(|log| ended_event(log.id, log.user_id, SessionEndReason::Revoked, None, now))
        .collect();
    Ok(Outcome::announcing(ended.len(), events))
}

/// Revokes every open login session of the user except `keep` (if any);
/// returns the ones it ended.
pub(crate) async fn revoke_others(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> AppResult<Vec<session_log::Model>> {
    let mut query = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(user_id))
        .filter(session_log::Column::LogoutAt.is_null());
    if let Some(keep) = keep {
        query = query.filter(session_log::Column::Id.ne(keep));
    }
    let mut ended = Vec::new();
    for log in query.all(db).await? {
        if end_login_session(db, now, log.id, SessionEndReason::Revoked).await? {
            ended.push(log);
        }
    }
    Ok(ended)
}
