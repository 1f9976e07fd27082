//! GraphQL views of sessions, configs, modules and videos.

use async_graphql::{Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{session, session_config};
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{ConfigOfSession, ModulesOfSession, TenantById, UserById};
use crate::graphql::tenancy::{Tenant, User};

use crate::graphql::content::ModuleList;
/// Modules and videos are the content domain's; sessions show them.
pub use crate::graphql::content::{Module, Video};

/// Where a session is in its lifecycle. Only `ACTIVE` sessions are enforced.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// Running: its lock profile is enforced.
    Active,
    /// Ended by the guardian or the user.
    Ended,
    /// Past its end time.
    Expired,
    /// Cancelled by an administrator.
    Revoked,
}

impl From<session::SessionStatus> for SessionStatus {
    fn from(status: session::SessionStatus) -> Self {
        match status {
            session::SessionStatus::Active => Self::Active,
            session::SessionStatus::Ended => Self::Ended,
            session::SessionStatus::Expired => Self::Expired,
            session::SessionStatus::Revoked => Self::Revoked,
        }
    }
}

/// How a session ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionEndKind {
    /// The supervised user ended it before its planned end (or at any time
    /// when it had none): an unlock. Only this notifies the guardian.
    UnlockedEarly,
    /// Its guardian ended it.
    EndedByGuardian,
    /// An administrator ended it.
    EndedByAdmin,
    /// A guardian or an administrator revoked it.
    Revoked,
    /// It reached its planned end.
    Expired,
}

impl From<session::SessionEndKind> for SessionEndKind {
    fn from(kind: session::SessionEndKind) -> Self {
        match kind {
            session::SessionEndKind::UnlockedEarly => Self::UnlockedEarly,
            session::SessionEndKind::EndedByGuardian => Self::EndedByGuardian,
            session::SessionEndKind::EndedByAdmin => Self::EndedByAdmin,
            session::SessionEndKind::Revoked => Self::Revoked,
            session::SessionEndKind::Expired => Self::Expired,
        }
    }
}

impl From<SessionEndKind> for session::SessionEndKind {
    fn from(kind: SessionEndKind) -> Self {
        match kind {
            SessionEndKind::UnlockedEarly => Self::UnlockedEarly,
            SessionEndKind::EndedByGuardian => Self::EndedByGuardian,
            SessionEndKind::EndedByAdmin => Self::EndedByAdmin,
            SessionEndKind::Revoked => Self::Revoked,
            SessionEndKind::Expired => Self::Expired,
        }
    }
}

/// The end record of `row` as readers see it at `now` (see
/// `services::sessions::effective_end`).
pub(crate) fn end_record(
    row: &session::Model,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<SessionEndKind>) {
    let (ended_at, kind) = crate::services::sessions::effective_end(row, now);
    (ended_at, kind.map(Into::into))
}

/// A guardian–user session: an enforcement period with ordered content.
pub struct Session(pub session::Model);

#[Object(serial)]
impl Session {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Kind of flow, `Linear Flow` by default.
    async fn session_type(&self) -> &str {
        &self.0.session_type
    }
    /// Lifecycle state. An active session past its end time reads as
    /// `EXPIRED` even before the sweeper has recorded it.
    async fn status(&self, ctx: &async_graphql::Context<'_>) -> Result<SessionStatus> {
        let now = ctx.state()?.clock.now();
        Ok(crate::services::sessions::effective_status(&self.0, now).into())
    }
    /// When the session started.
    async fn start_time(&self) -> DateTime<Utc> {
        self.0.start_time
    }
    /// When the session ends or ended, if set: the planned end while it
    /// runs, the actual end afterwards (see `plannedEndTime` and `endedAt`).
    async fn end_time(&self) -> Option<DateTime<Utc>> {
        self.0.end_time
    }
    /// The scheduled end, as last set (ending the session keeps it).
    async fn planned_end_time(&self) -> Option<DateTime<Utc>> {
        self.0.planned_end_time
    }
    /// When the session actually ended; none while it runs.
    async fn ended_at(&self, ctx: &async_graphql::Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(end_record(&self.0, ctx.state()?.clock.now()).0)
    }
    /// How the session ended; none while it runs (and for sessions ended
    /// before this was recorded).
    async fn end_kind(&self, ctx: &async_graphql::Context<'_>) -> Result<Option<SessionEndKind>> {
        Ok(end_record(&self.0, ctx.state()?.clock.now()).1)
    }
    /// The person who ended or revoked it (none for an expiry, or once
    /// their account is deleted).
    async fn ended_by(&self, ctx: &async_graphql::Context<'_>) -> Result<Option<User>> {
        let Some(ended_by) = self.0.ended_by else {
            return Ok(None);
        };
        Ok(ctx.load_one(UserById(ended_by)).await?.map(User))
    }
    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the row last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The tenant the session belongs to.
    async fn tenant(&self, ctx: &async_graphql::Context<'_>) -> Result<Tenant> {
        ctx.load_one(TenantById(self.0.tenant_id))
            .await?
            .map(Tenant)
            .ok_or_else(|| AppError::NotFound { resource: "tenant" }.into())
    }
    /// The supervised user.
    async fn user(&self, ctx: &async_graphql::Context<'_>) -> Result<User> {
        ctx.load_one(UserById(self.0.user_id))
            .await?
            .map(User)
            .ok_or_else(|| AppError::NotFound { resource: "user" }.into())
    }
    /// The supervising guardian, if any.
    async fn guardian(&self, ctx: &async_graphql::Context<'_>) -> Result<Option<User>> {
        let Some(guardian_id) = self.0.guardian_id else {
            return Ok(None);
        };
        Ok(ctx.load_one(UserById(guardian_id)).await?.map(User))
    }
    /// Session-specific rules, if any.
    async fn config(&self, ctx: &async_graphql::Context<'_>) -> Result<Option<SessionConfig>> {
        Ok(ctx
            .load_one(ConfigOfSession(self.0.id))
            .await?
            .flatten()
            .map(SessionConfig))
    }
    /// Content modules in order.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::services::content::MAX_MODULES_PER_SESSION, child_complexity)"
    )]
    async fn modules(&self, ctx: &async_graphql::Context<'_>) -> Result<ModuleList> {
        Ok(ModuleList(
            ctx.load_one(ModulesOfSession(self.0.id))
                .await?
                .unwrap_or_default(),
        ))
    }
}

/// Apps locked and allowed during a session.
#[derive(SimpleObject, Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockProfile {
    /// App ids blocked while the session is active.
    pub locked_apps: Vec<String>,
    /// App ids always allowed.
    pub whitelist: Vec<String>,
}

/// Per-session rules: label, lock profile, unlock notification.
pub struct SessionConfig(pub session_config::Model);

#[Object(serial)]
impl SessionConfig {
    /// Short label, e.g. "study mode".
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    /// Locked and whitelisted apps, if set.
    async fn lock_profile(&self) -> Option<LockProfile> {
        self.0
            .lock_profile
            .as_ref()
            .and_then(|json| serde_json::from_value(json.clone()).ok())
    }
    /// Whether the guardian is told when the session is unlocked early.
    async fn notify_on_unlock(&self) -> bool {
        self.0.notify_on_unlock
    }
    /// Message sent with the unlock notification.
    async fn custom_message(&self) -> Option<&str> {
        self.0.custom_message.as_deref()
    }
}
