//! Reading sessions: filtered, ordered, keyset-paged, always scoped.

use chrono::{DateTime, Utc};
use entity::session::{self, SessionEndKind, SessionStatus};
use entity::session_config;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::services::scope::Scope;

/// Which sessions to read.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Any of these statuses (as readers see them: an active session past
    /// its end time counts as expired).
    pub statuses: Option<Vec<SessionStatus>>,
    /// Only this user's.
    pub user_id: Option<Uuid>,
    /// Only those of this guardian.
    pub guardian_id: Option<Uuid>,
    /// Only of this type.
    pub session_type: Option<String>,
    /// Started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before.
    pub started_before: Option<DateTime<Utc>>,
    /// Ending at or after (sessions without an end time never match).
    pub ending_after: Option<DateTime<Utc>>,
    /// Ending before (sessions without an end time never match).
    pub ending_before: Option<DateTime<Utc>>,
    /// Ended in any of these ways (as readers see it: an active session
    /// past its end time counts as expired).
    pub end_kinds: Option<Vec<SessionEndKind>>,
    /// Ended at or after.
    pub ended_after: Option<DateTime<Utc>>,
    /// Ended before.
    pub ended_before: Option<DateTime<Utc>>,
}

/// The order sessions are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionOrderField {
    /// By creation time.
    CreatedAt,
    /// By start time.
    StartTime,
    /// By name.
    Name,
    /// By the actual end (for lists of ended sessions, such as unlocks:
    /// a session not yet ended sorts by its last change).
    EndedAt,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A sort order; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOrder {
    /// What to sort by.
    pub field: SessionOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl Default for SessionOrder {
    /// Newest first, as document 001's common query.
    fn default() -> Self {
        Self {
            field: SessionOrderField::CreatedAt,
            direction: OrderDirection::Desc,
        }
    }
}

/// The sort key of one row, as carried in a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortValue {
    /// A timestamp column.
    Time(DateTime<Utc>),
    /// A text column.
    Text(String),
}

impl SessionOrder {
    fn column(self) -> session::Column {
        match self.field {
            SessionOrderField::CreatedAt => session::Column::CreatedAt,
            SessionOrderField::StartTime => session::Column::StartTime,
            SessionOrderField::Name => session::Column::Name,
            SessionOrderField::EndedAt => session::Column::EndedAt,
        }
    }

    /// The sort key of `row` under this order.
    pub(crate) fn key_of(self, row: &session::Model) -> SortValue {
        match self.field {
            SessionOrderField::CreatedAt => SortValue::Time(row.created_at),
            SessionOrderField::StartTime => SortValue::Time(row.start_time),
            SessionOrderField::Name => SortValue::Text(row.name.clone()),
            SessionOrderField::EndedAt => SortValue::Time(row.ended_at.unwrap_or(row.updated_at)),
        }
    }

    /// Rows strictly after `(value, id)` in this order.
    fn after(self, value: SortValue, id: Uuid) -> AppResult<Condition> {
        let column = self.column();
        let value: sea_orm::Value = match (self.field, value) {
            (SessionOrderField::Name, SortValue::Text(text)) => text.into(),
            (
                SessionOrderField::CreatedAt | SessionOrderField::StartTime | SessionOrderField::EndedAt,
                SortValue::Time(time),
            ) => time.into(),
            _ => {
                return Err(AppError::bad_input(
                    "after",
                    "the cursor belongs to another order",
                ));
            }
        };
        let (beyond, beyond_id) = match self.direction {
            OrderDirection::Asc => (column.gt(value.clone()), session::Column::Id.gt(id)),
            OrderDirection::Desc => (column.lt(value.clone()), session::Column::Id.lt(id)),
        };
        Ok(Condition::any()
            .add(beyond)
            .add(Condition::all().add(column.eq(value)).add(beyond_id)))
    }
}

/// One page of sessions.
#[derive(Debug)]
pub struct SessionPage {
    /// The sessions of the page.
    pub sessions: Vec<session::Model>,
    /// Whether more sessions follow the page.
    pub has_next_page: bool,
}

/// The status a reader sees: an active session past its end time is expired
/// even before the sweeper has written it.
pub fn effective_status(row: &session::Model, now: DateTime<Utc>) -> SessionStatus {
    if row.status == SessionStatus::Active && !is_in_force(row, now) {
        SessionStatus::Expired
    } else {
        row.status
    }
}

/// Whether a session is in force at `now`: active and not past its end time.
pub fn is_in_force(row: &session::Model, now: DateTime<Utc>) -> bool {
    row.status == SessionStatus::Active && row.end_time.is_none_or(|end| end > now)
}

/// The end record a reader sees: an active session past its planned end
/// has expired, at that end, even before the sweeper has recorded it
/// (the twin of [`effective_status`]); `(ended at, how)`.
pub fn effective_end(
    row: &session::Model,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<SessionEndKind>) {
    match effective_status(row, now) {
        SessionStatus::Active => (None, None),
        SessionStatus::Expired if row.status == SessionStatus::Active => {
            (row.end_time, Some(SessionEndKind::Expired))
        }
        _ => (row.ended_at, row.end_kind),
    }
}

/// Sessions in force at `now` (the query twin of [`is_in_force`]).
pub fn in_force_condition(now: DateTime<Utc>) -> Condition {
    status_condition(SessionStatus::Active, now)
}

fn status_condition(status: SessionStatus, now: DateTime<Utc>) -> Condition {
    let not_yet_over = Condition::any()
        .add(session::Column::EndTime.is_null())
        .add(session::Column::EndTime.gt(now));
    let active = Condition::all().add(session::Column::Status.eq(SessionStatus::Active));
    match status {
        SessionStatus::Active => active.add(not_yet_over),
        SessionStatus::Expired => Condition::any()
            .add(session::Column::Status.eq(SessionStatus::Expired))
            .add(active.add(session::Column::EndTime.lte(now))),
        other => Condition::all().add(session::Column::Status.eq(other)),
    }
}

fn end_kind_condition(kind: SessionEndKind, now: DateTime<Utc>) -> Condition {
    let recorded = Condition::all().add(session::Column::EndKind.eq(kind));
    match kind {
        SessionEndKind::Expired => Condition::any().add(recorded).add(
            Condition::all()
                .add(session::Column::Status.eq(SessionStatus::Active))
                .add(session::Column::EndTime.lte(now)),
        ),
        _ => recorded,
    }
}

fn filter_condition(filter: &SessionFilter, now: DateTime<Utc>) -> Condition {
    let mut condition = Condition::all();
    if let Some(statuses) = &filter.statuses {
        condition = condition.add(statuses.iter().fold(Condition::any(), |any, status| {
            any.add(status_condition(*status, now))
        }));
    }
    if let Some(user_id) = filter.user_id {
        condition = condition.add(session::Column::UserId.eq(user_id));
    }
    if let Some(guardian_id) = filter.guardian_id {
        condition = condition.add(session::Column::GuardianId.eq(guardian_id));
    }
    if let Some(session_type) = &filter.session_type {
        condition = condition.add(session::Column::SessionType.eq(session_type.as_str()));
    }
    if let Some(after) = filter.started_after {
        condition = condition.add(session::Column::StartTime.gte(after));
    }
    if let Some(before) = filter.started_before {
        condition = condition.add(session::Column::StartTime.lt(before));
    }
    if let Some(after) = filter.ending_after {
        condition = condition.add(session::Column::EndTime.gte(after));
    }
    if let Some(before) = filter.ending_before {
        condition = condition.add(session::Column::EndTime.lt(before));
    }
    if let Some(kinds) = &filter.end_kinds {
        condition = condition.add(kinds.iter().fold(Condition::any(), |any, kind| {
            any.add(end_kind_condition(*kind, now))
        }));
    }
    if let Some(after) = filter.ended_after {
        condition = condition.add(session::Column::EndedAt.gte(after));
    }
    if let Some(before) = filter.ended_before {
        condition = condition.add(session::Column::EndedAt.lt(before));
    }
    condition
}

/// A page of the sessions in scope matching `filter`, in `order`, after the
/// cursor `after`.
pub async fn page_sessions(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &SessionFilter,
    order: SessionOrder,
    after: Option<(SortValue, Uuid)>,
    limit: u64,
    now: DateTime<Utc>,
) -> AppResult<SessionPage> {
    let direction = match order.direction {
        OrderDirection::Asc => Order::Asc,
        OrderDirection::Desc => Order::Desc,
    };
    let mut query = session::Entity::find()
        .filter(scope.sessions())
        .filter(filter_condition(filter, now))
        .order_by(order.column(), direction.clone())
        .order_by(session::Column::Id, direction)
        .limit(limit + 1);
    if let Some((value, id)) = after {
        query = query.filter(order.after(value, id)?);
    }
    let mut sessions = query.all(db).await?;
    let has_next_page = sessions.len() as u64 > limit;
    sessions.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(SessionPage {
        sessions,
        has_next_page,
    })
}

/// How many sessions in scope match `filter`.
pub async fn count_sessions(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &SessionFilter,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    Ok(session::Entity::find()
        .filter(scope.sessions())
        .filter(filter_condition(filter, now))
        .count(db)
        .await?)
}

/// One session in scope; out of scope reads as not found.
pub async fn find_session(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<session::Model> {
    session::Entity::find_by_id(id)
        .filter(scope.sessions())
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "session" })
}

/// A session by id, for the subscribers of one of its events: each was
/// admitted to it by the rule that [`Scope::sessions`] applies to reads.
pub async fn find_session_of_event(
    db: &impl ConnectionTrait,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<session::Model> {
    session::Entity::find_by_id(id)
        .filter(session::Column::TenantId.eq(tenant_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "session" })
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

/// The session of `user_id` in force at `now`, if any (the newest by start
/// time when several overlap).
pub async fn active_session_of(
    db: &impl ConnectionTrait,
    reader: StateReader<'_>,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Option<(session::Model, Option<session_config::Model>)>> {
    let mut query = session::Entity::find()
        .find_also_related(session_config::Entity)
        .filter(session::Column::UserId.eq(user_id))
        .filter(status_condition(SessionStatus::Active, now))
        .filter(session::Column::StartTime.lte(now))
        .order_by_desc(session::Column::StartTime)
        .order_by_desc(session::Column::Id);
    if let StateReader::User(scope) = reader {
        query = query.filter(scope.sessions());
    }
    Ok(query.one(db).await?)
}
