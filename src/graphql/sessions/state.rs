//! Session state for other services (lock manager, notification service).

use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};
use entity::{session, session_config};
use uuid::Uuid;

use super::types::{LockProfile, SessionEndKind, SessionStatus, end_record};
use crate::auth::Identity;
use crate::config::ServiceGrant;
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::services::scope::Scope;
use crate::services::sessions::{self as service, StateReader};

/// Whether a session is in force, with what other services need to enforce it.
pub struct SessionState {
    session: session::Model,
    config: Option<session_config::Model>,
    now: DateTime<Utc>,
}

#[Object(serial)]
impl SessionState {
    /// The session.
    async fn session_id(&self) -> Uuid {
        self.session.id
    }
    /// Whether it is in force now: active and not past its end time.
    async fn active(&self) -> bool {
        service::is_in_force(&self.session, self.now)
    }
    /// Its lifecycle state; an active session past its end time reads as `EXPIRED`.
    async fn status(&self) -> SessionStatus {
        if self.session.status == session::SessionStatus::Active
            && !service::is_in_force(&self.session, self.now)
        {
            SessionStatus::Expired
        } else {
            self.session.status.into()
        }
    }
    /// The tenant.
    async fn tenant_id(&self) -> Uuid {
        self.session.tenant_id
    }
    /// The supervised user.
    async fn user_id(&self) -> Uuid {
        self.session.user_id
    }
    /// The guardian, if any.
    async fn guardian_id(&self) -> Option<Uuid> {
        self.session.guardian_id
    }
    /// When it started.
    async fn start_time(&self) -> DateTime<Utc> {
        self.session.start_time
    }
    /// When it ends, if set (the actual end once it has ended).
    async fn end_time(&self) -> Option<DateTime<Utc>> {
        self.session.end_time
    }
    /// The scheduled end, as last set (ending the session keeps it).
    async fn planned_end_time(&self) -> Option<DateTime<Utc>> {
        self.session.planned_end_time
    }
    /// When it actually ended; none while in force.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        end_record(&self.session, self.now).0
    }
    /// How it ended; none while in force.
    async fn end_kind(&self) -> Option<SessionEndKind> {
        end_record(&self.session, self.now).1
    }
    /// The config's label.
    async fn label(&self) -> Option<&str> {
        self.config.as_ref().and_then(|config| config.label.as_deref())
    }
    /// Apps to lock and to allow.
    async fn lock_profile(&self) -> Option<LockProfile> {
        self.config
            .as_ref()
            .and_then(|config| config.lock_profile.clone())
            .and_then(|json| serde_json::from_value(json).ok())
    }
    /// Whether the guardian is told when the session is unlocked early.
    async fn notify_on_unlock(&self) -> bool {
        self.config.as_ref().is_none_or(|config| config.notify_on_unlock)
    }
    /// The message for that notification.
    async fn custom_message(&self) -> Option<&str> {
        self.config
            .as_ref()
            .and_then(|config| config.custom_message.as_deref())
    }
}

/// Who reads session state: a service granted `lock_state` (every
/// tenant), or a person within their scope.
pub(super) fn reader(identity: &Identity) -> Result<ReaderScope, AppError> {
    match identity {
        Identity::Service(service) => {
            service.require(ServiceGrant::LockState)?;
            Ok(ReaderScope::Service)
        }
        other => Scope::of(other).map(ReaderScope::User),
    }
}

pub(super) enum ReaderScope {
    Service,
    User(Scope),
}

impl ReaderScope {
    pub(super) fn as_reader(&self) -> StateReader<'_> {
        match self {
            Self::Service => StateReader::Service,
            Self::User(scope) => StateReader::User(scope),
        }
    }
}

/// Session-state queries (services, and users within their scope).
#[derive(Default)]
pub struct SessionStateQuery;

#[Object(serial)]
impl SessionStateQuery {
    /// Whether a session is in force, with its lock profile. For other
    /// services (service credential) and for users within their scope.
    async fn is_session_active(&self, ctx: &Context<'_>, session_id: Uuid) -> Result<SessionState> {
        let reader = reader(ctx.identity())?;
        let state = ctx.state()?;
        let (session, config) = service::session_state(&state.db, reader.as_reader(), session_id).await?;
        Ok(SessionState {
            session,
            config,
            now: state.clock.now(),
        })
    }

    /// The session in force for a user right now, if any: the newest when
    /// several are, which misleads whoever enforces only it.
    #[graphql(
        deprecation = "Use `lockState`: it merges every session in force, in every tenant, with the most restrictive winning."
    )]
    async fn active_session(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<Option<SessionState>> {
        let reader = reader(ctx.identity())?;
        let state = ctx.state()?;
        let now = state.clock.now();
        Ok(
            service::active_session_of(&state.db, reader.as_reader(), user_id, now)
                .await?
                .map(|(session, config)| SessionState { session, config, now }),
        )
    }
}
