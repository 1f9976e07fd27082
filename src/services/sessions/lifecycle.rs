//! The session lifecycle: a state machine (active → ended, expired or
//! revoked; nothing leaves a final state), starting, creating, updating and
//! deleting, and the expiry of sessions past their end time.
//!
//! Every function works inside the caller's transaction and returns the
//! events to publish once it has committed.

use chrono::{DateTime, Duration, Utc};
use entity::session::{self, SessionEndKind, SessionStatus};
use entity::session_config;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use super::config::{ConfigInput, set_config};
use super::queries::{find_session, is_in_force};
use crate::error::{AppError, AppResult};
use crate::events::{Event, SessionChange, SessionEvent, UnlockNotification};
use crate::services::scope::{Reach, Scope, supervises};
use crate::services::tenant_context::membership;
use crate::services::validation::required_name;

/// Longest session name, in characters.
const MAX_NAME: usize = 255;
/// Longest session type, in characters.
const MAX_TYPE: usize = 50;
/// The type of a session when none is given.
pub const DEFAULT_SESSION_TYPE: &str = "Linear Flow";
/// Longest session, in minutes (a week).
const MAX_DURATION_MINUTES: i64 = 7 * 24 * 60;

/// A session to start or create.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Display name.
    pub name: Option<String>,
    /// Kind of flow; `Linear Flow` by default.
    pub session_type: Option<String>,
    /// When it ends (exclusive with `duration_minutes`).
    pub end_time: Option<DateTime<Utc>>,
    /// How long it lasts from now (exclusive with `end_time`).
    pub duration_minutes: Option<i64>,
    /// Its config, if any.
    pub config: Option<ConfigInput>,
}

/// Changes to a session; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    /// New name.
    pub name: Option<String>,
    /// New type.
    pub session_type: Option<String>,
    /// New end time (must be after the start).
    pub end_time: Option<DateTime<Utc>>,
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Ended by a person (early: an unlock).
    End,
    /// Cancelled by a guardian or an administrator.
    Revoke,
}

/// The event of `change`, carrying `row` as the change left it.
pub(super) fn event(change: SessionChange, row: &session::Model, now: DateTime<Utc>) -> Event {
    Event::Session(SessionEvent {
        change,
        session_id: row.id,
        tenant_id: row.tenant_id,
        user_id: row.user_id,
        guardian_id: row.guardian_id,
        occurred_at: now,
        session: (change != SessionChange::Deleted).then(|| row.clone()),
    })
}

fn session_type(value: Option<String>) -> AppResult<String> {
    match value {
        None => Ok(DEFAULT_SESSION_TYPE.to_owned()),
        Some(value) => required_name("sessionType", &value, MAX_TYPE),
    }
}

fn end_time(input: &NewSession, start: DateTime<Utc>) -> AppResult<Option<DateTime<Utc>>> {
    match (input.end_time, input.duration_minutes) {
        (Some(_), Some(_)) => Err(AppError::bad_input(
            "durationMinutes",
            "give either endTime or durationMinutes, not both",
        )),
        (Some(end), None) if end <= start => {
            Err(AppError::bad_input("endTime", "must be after the start (now)"))
        }
        (Some(end), None) if end - start > Duration::minutes(MAX_DURATION_MINUTES) => {
            Err(AppError::bad_input(
                "endTime",
                format!("a session lasts at most {MAX_DURATION_MINUTES} minutes"),
            ))
        }
        (Some(end), None) => Ok(Some(end)),
        (None, Some(minutes)) if !(1..=MAX_DURATION_MINUTES).contains(&minutes) => Err(AppError::bad_input(
            "durationMinutes",
            format!("must be between 1 and {MAX_DURATION_MINUTES}"),
        )),
        (None, Some(minutes)) => Ok(Some(start + Duration::minutes(minutes))),
        (None, None) => Ok(None),
    }
}

async fn insert(
    db: &impl ConnectionTrait,
    scope: &Scope,
    user_id: Uuid,
    guardian_id: Option<Uuid>,
    input: NewSession,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    let name = required_name("name", input.name.as_deref().unwrap_or("Session"), MAX_NAME)?;
    let end = end_time(&input, now)?;
    let row = session::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        user_id: Set(user_id),
        guardian_id: Set(guardian_id),
        name: Set(name),
        session_type: Set(session_type(input.session_type)?),
        status: Set(SessionStatus::Active),
        start_time: Set(now),
        end_time: Set(end),
        planned_end_time: Set(end),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if let Some(config) = input.config {
        set_config(db, row.id, config, now).await?;
    }
    let events = vec![event(SessionChange::Started, &row, now)];
    Ok((row, events))
}

/// A guardian (or a tenant admin) starts a session for a supervised user
/// (document 000's `startSession(userId, guardianId)`).
pub async fn start_session(
    db: &impl ConnectionTrait,
    scope: &Scope,
    user_id: Uuid,
    guardian_id: Option<Uuid>,
    input: NewSession,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    let not_found = || AppError::NotFound { resource: "user" };
    // Checked before the user is looked up, so that the answer does not
    // tell a supervised user who belongs to the tenant.
    if scope.reach == Reach::Own {
        return Err(AppError::forbidden(
            "only guardians and administrators start sessions for others; use createSession for your own",
        ));
    }
    membership(db, user_id, scope.tenant_id)
        .await?
        .ok_or_else(not_found)?;
    let guardian_id = match scope.reach {
        Reach::Own => return Err(not_found()),
        Reach::Supervised => {
            if guardian_id.is_some_and(|guardian| guardian != scope.user_id) {
                return Err(AppError::bad_input(
                    "guardianId",
                    "a guardian starts sessions as themselves",
                ));
            }
            if !supervises(db, scope.tenant_id, scope.user_id, user_id).await? {
                return Err(not_found());
            }
            Some(scope.user_id)
        }
        Reach::Tenant => {
            if let Some(guardian) = guardian_id
                && !supervises(db, scope.tenant_id, guardian, user_id).await?
            {
                return Err(AppError::bad_input(
                    "guardianId",
                    "is not a guardian of this user in this tenant",
                ));
            }
            guardian_id
        }
    };
    insert(db, scope, user_id, guardian_id, input, now).await
}

/// A user creates a session of their own (document 001).
pub async fn create_session(
    db: &impl ConnectionTrait,
    scope: &Scope,
    input: NewSession,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    if input.name.is_none() {
        return Err(AppError::bad_input("name", "is required"));
    }
    insert(db, scope, scope.user_id, None, input, now).await
}

/// Finds a session in scope that can still change, locking its row on
/// PostgreSQL so that concurrent changes to it take turns.
pub async fn find_changeable(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<session::Model> {
    let row = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => session::Entity::find_by_id(id)
            .filter(scope.sessions())
            .lock_exclusive()
            .one(db)
            .await?
            .ok_or(AppError::NotFound { resource: "session" })?,
        _ => find_session(db, scope, id).await?,
    };
    if row.status != SessionStatus::Active {
        return Err(AppError::Conflict(format!(
            "the session is already {} and can no longer change",
            status_word(row.status)
        )));
    }
    if !is_in_force(&row, now) {
        return Err(AppError::Conflict(
            "the session has expired and can no longer change".to_owned(),
        ));
    }
    Ok(row)
}

fn status_word(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Active => "active",
        SessionStatus::Ended => "ended",
        SessionStatus::Expired => "expired",
        SessionStatus::Revoked => "revoked",
    }
}

/// Changes the name, type or end time of an active session.
pub async fn update_session(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    update: SessionUpdate,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    let row = find_changeable(db, scope, id, now).await?;
    scope.require_may_change_session(row.guardian_id)?;
    let mut model: session::ActiveModel = row.clone().into();
    if let Some(name) = update.name {
        model.name = Set(required_name("name", &name, MAX_NAME)?);
    }
    if let Some(kind) = update.session_type {
        model.session_type = Set(session_type(Some(kind))?);
    }
    if let Some(end) = update.end_time {
        if end <= now || end <= row.start_time {
            return Err(AppError::bad_input("endTime", "must be in the future"));
        }
        if end - row.start_time > Duration::minutes(MAX_DURATION_MINUTES) {
            return Err(AppError::bad_input(
                "endTime",
                format!("a session lasts at most {MAX_DURATION_MINUTES} minutes"),
            ));
        }
        model.end_time = Set(Some(end));
        model.planned_end_time = Set(Some(end));
    }
    model.updated_at = Set(now);
    let row = model.update(db).await?;
    let events = vec![event(SessionChange::Updated, &row, now)];
    Ok((row, events))
}

/// How ending `row` by the viewer of `scope` is recorded: its own user
/// ending it unlocks early (it is in force, so before its planned end); a
/// guardian or an administrator ends it.
fn end_kind(transition: Transition, scope: &Scope, row: &session::Model) -> SessionEndKind {
    match (transition, scope.reach) {
        (Transition::Revoke, _) => SessionEndKind::Revoked,
        (Transition::End, _) if row.user_id == scope.user_id => SessionEndKind::UnlockedEarly,
        (Transition::End, Reach::Own) => SessionEndKind::UnlockedEarly,
        (Transition::End, Reach::Supervised) => SessionEndKind::EndedByGuardian,
        (Transition::End, Reach::Tenant) => SessionEndKind::EndedByAdmin,
    }
}

/// Ends or revokes an active session, recording when, by whom and how
/// (the planned end is kept). Only an unlock (the supervised user ending
/// it early) whose config asks for it notifies the guardian, with the
/// custom message.
pub async fn transition(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    transition: Transition,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    let row = find_changeable(db, scope, id, now).await?;
    let (status, change) = match transition {
        Transition::End => (SessionStatus::Ended, SessionChange::Ended),
        Transition::Revoke => {
            if scope.reach == Reach::Own {
                return Err(AppError::forbidden(
                    "only a guardian or an administrator may revoke a session",
                ));
            }
            (SessionStatus::Revoked, SessionChange::Revoked)
        }
    };
    let kind = end_kind(transition, scope, &row);
    let mut model: session::ActiveModel = row.clone().into();
    model.status = Set(status);
    model.end_time = Set(Some(now));
    model.ended_at = Set(Some(now));
    model.ended_by = Set(Some(scope.user_id));
    model.end_kind = Set(Some(kind));
    model.updated_at = Set(now);
    let updated = model.update(db).await?;
    let mut events = vec![event(change, &updated, now)];
    if kind == SessionEndKind::UnlockedEarly
        && let Some(guardian_id) = row.guardian_id
    {
        let config = session_config::Entity::find_by_id(row.id).one(db).await?;
        if config.as_ref().is_none_or(|config| config.notify_on_unlock) {
            events.push(Event::Unlock(UnlockNotification {
                session_id: row.id,
                tenant_id: row.tenant_id,
                user_id: row.user_id,
                guardian_id,
                message: config.and_then(|config| config.custom_message),
                occurred_at: now,
            }));
        }
    }
    Ok((updated, events))
}

/// Deletes a session and its content. A supervised user may delete only
/// sessions they created themselves (without a guardian).
pub async fn delete_session(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(session::Model, Vec<Event>)> {
    let row = find_session(db, scope, id).await?;
    if scope.reach == Reach::Own && row.guardian_id.is_some() {
        return Err(AppError::forbidden(
            "a session started by a guardian can only be deleted by them or an administrator",
        ));
    }
    session::Entity::delete_by_id(row.id).exec(db).await?;
    let events = vec![event(SessionChange::Deleted, &row, now)];
    Ok((row, events))
}

/// Marks every active session past its end time as expired; returns the
/// events for those this call changed (another instance's sweeper may race
/// it: each row changes, and is announced, once).
pub async fn expire_due(db: &impl ConnectionTrait, now: DateTime<Utc>, limit: u64) -> AppResult<Vec<Event>> {
    let due = session::Entity::find()
        .filter(session::Column::Status.eq(SessionStatus::Active))
        .filter(session::Column::EndTime.lte(now))
        .limit(limit)
        .all(db)
        .await?;
    let mut events = Vec::with_capacity(due.len());
    for row in due {
        let changed = session::Entity::update_many()
            .col_expr(session::Column::Status, Expr::value(SessionStatus::Expired))
            .col_expr(session::Column::EndedAt, Expr::value(row.end_time))
            .col_expr(session::Column::EndKind, Expr::value(SessionEndKind::Expired))
            .col_expr(session::Column::UpdatedAt, Expr::value(now))
            .filter(session::Column::Id.eq(row.id))
            .filter(session::Column::Status.eq(SessionStatus::Active))
            .exec(db)
            .await?
            .rows_affected
            == 1;
        if changed {
            let expired = session::Model {
                status: SessionStatus::Expired,
                ended_at: row.end_time,
                end_kind: Some(SessionEndKind::Expired),
                updated_at: now,
                ..row
            };
            events.push(event(
                SessionChange::Expired,
                &expired,
                expired.end_time.unwrap_or(now),
            ));
        }
    }
    Ok(events)
}

/// The `DELETED` events of the active sessions matching `which`, read
/// before what they belong to is deleted and takes them along (a tenant,
/// an account): whoever follows them, the lock manager above all, learns
/// that they are gone.
pub async fn deleted_along(
    db: &impl ConnectionTrait,
    which: sea_orm::sea_query::Condition,
    now: DateTime<Utc>,
) -> AppResult<Vec<Event>> {
    Ok(session::Entity::find()
        .filter(session::Column::Status.eq(SessionStatus::Active))
        .filter(which)
        .all(db)
        .await?
        .iter()
        .map(|row| event(SessionChange::Deleted, row, now))
        .collect())
}
