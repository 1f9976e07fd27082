//! Input types of the session queries and mutations.

use async_graphql::{Enum, InputObject};
use chrono::{DateTime, Utc};
use entity::session::SessionStatus as StoredStatus;
use uuid::Uuid;

use super::types::{SessionEndKind, SessionStatus};
use crate::error::{AppError, AppResult};
use crate::services::sessions as service;

/// Which sessions to list.
#[derive(InputObject, Default)]
pub struct SessionFilterInput {
    /// Any of these statuses. An active session past its end time counts as `EXPIRED`.
    pub status: Option<Vec<SessionStatus>>,
    /// Only this user's sessions.
    pub user_id: Option<Uuid>,
    /// Only sessions of this guardian.
    pub guardian_id: Option<Uuid>,
    /// Only sessions of this type, e.g. `Linear Flow`.
    pub session_type: Option<String>,
    /// Started at or after this time.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before this time.
    pub started_before: Option<DateTime<Utc>>,
    /// Ending (or ended) at or after this time.
    pub ending_after: Option<DateTime<Utc>>,
    /// Ending (or ended) before this time.
    pub ending_before: Option<DateTime<Utc>>,
    /// Ended in any of these ways. An active session past its end time counts as `EXPIRED`.
    pub end_kind: Option<Vec<SessionEndKind>>,
    /// Ended at or after this time.
    pub ended_after: Option<DateTime<Utc>>,
    /// Ended before this time.
    pub ended_before: Option<DateTime<Utc>>,
}

impl SessionFilterInput {
    /// The service-level filter; an empty time range is an error.
    pub(crate) fn into_filter(self) -> AppResult<service::SessionFilter> {
        if let (Some(after), Some(before)) = (self.started_after, self.started_before)
            && after >= before
        {
            return Err(AppError::bad_input(
                "filter.startedBefore",
                "must be after startedAfter",
            ));
        }
        if let (Some(after), Some(before)) = (self.ending_after, self.ending_before)
            && after >= before
        {
            return Err(AppError::bad_input(
                "filter.endingBefore",
                "must be after endingAfter",
            ));
        }
        if let (Some(after), Some(before)) = (self.ended_after, self.ended_before)
            && after >= before
        {
            return Err(AppError::bad_input(
                "filter.endedBefore",
                "must be after endedAfter",
            ));
        }
        Ok(service::SessionFilter {
            end_kinds: self
                .end_kind
                .map(|kinds| kinds.into_iter().map(Into::into).collect()),
            ended_after: self.ended_after,
            ended_before: self.ended_before,
            statuses: self
                .status
                .map(|statuses| statuses.into_iter().map(StoredStatus::from).collect()),
            user_id: self.user_id,
            guardian_id: self.guardian_id,
            session_type: self.session_type,
            started_after: self.started_after,
            started_before: self.started_before,
            ending_after: self.ending_after,
            ending_before: self.ending_before,
        })
    }
}

/// Which past unlocks to list.
#[derive(InputObject, Default)]
pub struct UnlockFilterInput {
    /// Only this user's unlocks.
    pub user_id: Option<Uuid>,
    /// Only unlocks of sessions of this guardian.
    pub guardian_id: Option<Uuid>,
    /// Unlocked at or after this time.
    pub ended_after: Option<DateTime<Utc>>,
    /// Unlocked before this time.
    pub ended_before: Option<DateTime<Utc>>,
}

impl UnlockFilterInput {
    /// The sessions filter of these unlocks.
    pub(crate) fn into_filter(self) -> AppResult<service::SessionFilter> {
        SessionFilterInput {
            user_id: self.user_id,
            guardian_id: self.guardian_id,
            ended_after: self.ended_after,
            ended_before: self.ended_before,
            end_kind: Some(vec![SessionEndKind::UnlockedEarly]),
            ..Default::default()
        }
        .into_filter()
    }
}

/// What sessions can be sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionOrderField {
    /// Creation time.
    CreatedAt,
    /// Start time.
    StartTime,
    /// Name.
    Name,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A sort order of sessions.
#[derive(InputObject)]
pub struct SessionOrderBy {
    /// What to sort by.
    pub field: SessionOrderField,
    /// Which way; descending by default.
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}

impl From<SessionOrderBy> for service::SessionOrder {
    fn from(order: SessionOrderBy) -> Self {
        Self {
            field: match order.field {
                SessionOrderField::CreatedAt => service::SessionOrderField::CreatedAt,
                SessionOrderField::StartTime => service::SessionOrderField::StartTime,
                SessionOrderField::Name => service::SessionOrderField::Name,
            },
            direction: match order.direction {
                OrderDirection::Asc => service::OrderDirection::Asc,
                OrderDirection::Desc => service::OrderDirection::Desc,
            },
        }
    }
}

/// Apps to lock and to allow during a session.
#[derive(InputObject)]
pub struct LockProfileInput {
    /// App ids blocked while the session is active (at most 200).
    pub locked_apps: Vec<String>,
    /// App ids always allowed (at most 200; none may also be locked).
    #[graphql(default)]
    pub whitelist: Vec<String>,
}

/// A session config; omitted fields keep their value (or their default for a new config).
#[derive(InputObject)]
#[graphql(name = "SessionConfigInput")]
pub struct ConfigInput {
    /// Short label, e.g. "study mode" (at most 255 characters; empty clears it).
    pub label: Option<String>,
    /// Locked and whitelisted apps.
    pub lock_profile: Option<LockProfileInput>,
    /// Tell the guardian when the session is ended early. Default true.
    pub notify_on_unlock: Option<bool>,
    /// Message sent with that notification (at most 1000 characters; empty clears it).
    pub custom_message: Option<String>,
}

impl From<ConfigInput> for service::ConfigInput {
    fn from(input: ConfigInput) -> Self {
        Self {
            label: input.label,
            lock_profile: input.lock_profile.map(|profile| service::LockProfileInput {
                locked_apps: profile.locked_apps,
                whitelist: profile.whitelist,
            }),
            notify_on_unlock: input.notify_on_unlock,
            custom_message: input.custom_message,
        }
    }
}

/// A session a guardian starts for a user.
#[derive(InputObject, Default)]
pub struct StartSessionInput {
    /// Display name (1–255 characters); "Session" by default.
    pub name: Option<String>,
    /// Kind of flow (1–50 characters); `Linear Flow` by default.
    pub session_type: Option<String>,
    /// When it ends; give this or `durationMinutes`, or neither for an open-ended session.
    pub end_time: Option<DateTime<Utc>>,
    /// How long it lasts from now, in minutes (1–10080).
    pub duration_minutes: Option<i32>,
    /// Its config.
    pub config: Option<ConfigInput>,
}

impl StartSessionInput {
    /// The service-level new session.
    pub(crate) fn into_new_session(self) -> service::NewSession {
        service::NewSession {
            name: self.name,
            session_type: self.session_type,
            end_time: self.end_time,
            duration_minutes: self.duration_minutes.map(i64::from),
            config: self.config.map(Into::into),
        }
    }
}

/// A session of your own.
#[derive(InputObject)]
pub struct CreateSessionInput {
    /// Display name (1–255 characters).
    pub name: String,
    /// Kind of flow (1–50 characters); `Linear Flow` by default.
    pub session_type: Option<String>,
    /// When it ends; give this or `durationMinutes`, or neither.
    pub end_time: Option<DateTime<Utc>>,
    /// How long it lasts from now, in minutes (1–10080).
    pub duration_minutes: Option<i32>,
    /// Its config.
    pub config: Option<ConfigInput>,
}

impl CreateSessionInput {
    /// The service-level new session.
    pub(crate) fn into_new_session(self) -> service::NewSession {
        service::NewSession {
            name: Some(self.name),
            session_type: self.session_type,
            end_time: self.end_time,
            duration_minutes: self.duration_minutes.map(i64::from),
            config: self.config.map(Into::into),
        }
    }
}

/// Changes to an active session; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateSessionInput {
    /// New display name (1–255 characters).
    pub name: Option<String>,
    /// New kind of flow (1–50 characters).
    pub session_type: Option<String>,
    /// New end time (in the future).
    pub end_time: Option<DateTime<Utc>>,
}

impl From<UpdateSessionInput> for service::SessionUpdate {
    fn from(input: UpdateSessionInput) -> Self {
        Self {
            name: input.name,
            session_type: input.session_type,
            end_time: input.end_time,
        }
    }
}

impl From<SessionStatus> for StoredStatus {
    fn from(status: SessionStatus) -> Self {
        match status {
            SessionStatus::Active => Self::Active,
            SessionStatus::Ended => Self::Ended,
            SessionStatus::Expired => Self::Expired,
            SessionStatus::Revoked => Self::Revoked,
        }
    }
}
