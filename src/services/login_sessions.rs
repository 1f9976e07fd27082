//! Login sessions (`session_logs`): the device list, revocation.

use chrono::{DateTime, Utc};
use entity::session_log::{self, SessionEndReason};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::{AppError, AppResult};
use crate::events::{Event, LoginSessionChange, LoginSessionEvent};
use crate::services::auth::end_login_session;
use crate::services::login_policy::{Deadline, deadline, ended_event};
use crate::services::scope::Scope;
use crate::services::settings::{SettingsCache, effective_for_member};
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

/// Keeps the caller's login session open: a user action whose
/// `last_seen_at` is written now rather than batched, announced so that
/// every instance and every client of the user sees the new deadline.
/// Returns the login session and its deadline; the absolute timeout
/// still applies.
pub(crate) async fn extend(
    db: &impl ConnectionTrait,
    settings: &SettingsCache,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
) -> AppResult<Outcome<(session_log::Model, Deadline)>> {
    session_log::Entity::update_many()
        .col_expr(session_log::Column::LastSeenAt, Expr::value(now))
        .filter(session_log::Column::Id.eq(viewer.login_session_id))
        .filter(session_log::Column::LogoutAt.is_null())
        .filter(session_log::Column::LastSeenAt.lt(now))
        .exec(db)
        .await?;
    let row = session_log::Entity::find_by_id(viewer.login_session_id)
        .one(db)
        .await?
        .ok_or_else(|| {
            AppError::Unauthenticated("the login session no longer exists: log in again".to_owned())
        })?;
    if let Some(reason) = row.end_reason {
        // Ended between authentication and this write.
        return Err(AppError::LoginSessionEnded(reason));
    }
    let effective = effective_for_member(
        db,
        settings,
        &viewer.account,
        &viewer.memberships,
        viewer.tenant_id,
    )
    .await?;
    let due = deadline(&row, &effective);
    let extended = Event::LoginSession(LoginSessionEvent {
        change: LoginSessionChange::Extended,
        login_session_id: row.id,
        user_id: row.user_id,
        end_reason: None,
        expires_at: Some(due.at),
        occurred_at: now,
    });
    Ok(Outcome::announcing((row, due), vec![extended]))
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
