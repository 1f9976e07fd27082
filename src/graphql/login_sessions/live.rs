//! Live login-session events for the user's own clients: a warning before a
//! login session expires, then its expiry or revocation.

use std::collections::HashSet;

use async_graphql::{Context, Enum, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::session_log;
use futures_util::Stream;
use futures_util::stream;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::AppError;
use crate::events::{Event, LoginSessionChange, LoginSessionEvent as BusEvent};
use crate::graphql::{AppState, ContextExt};
use crate::services::login_policy::{deadline, warning_at};
use crate::services::settings::effective_for_user;

/// What happened to a login session.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum LoginSessionEventKind {
    /// It expires within the warning period unless the user is active.
    ExpiringSoon,
    /// It expired (idle or absolute timeout).
    Expired,
    /// It was revoked, evicted by a newer login, or invalidated by one.
    Revoked,
    /// The user logged out.
    LoggedOut,
}

impl From<LoginSessionChange> for LoginSessionEventKind {
    fn from(change: LoginSessionChange) -> Self {
        match change {
            LoginSessionChange::ExpiringSoon => Self::ExpiringSoon,
            LoginSessionChange::Expired => Self::Expired,
            LoginSessionChange::Revoked => Self::Revoked,
            LoginSessionChange::LoggedOut => Self::LoggedOut,
        }
    }
}

/// A change of one of your login sessions.
#[derive(SimpleObject, Clone)]
pub struct LoginSessionEvent {
    /// What happened.
    pub kind: LoginSessionEventKind,
    /// The login session.
    pub login_session_id: Uuid,
    /// Why it ended (`logout`, `revoked`, `evicted`, `invalidated`, `expired_idle`, `expired_absolute`).
    pub end_reason: Option<String>,
    /// When it expires (EXPIRING_SOON) or expired.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl From<&BusEvent> for LoginSessionEvent {
    fn from(event: &BusEvent) -> Self {
        Self {
            kind: event.change.into(),
            login_session_id: event.login_session_id,
            end_reason: event.end_reason.clone(),
            expires_at: event.expires_at,
            occurred_at: event.occurred_at,
        }
    }
}

/// One subscriber's state: who, which sessions, which warnings were sent.
struct Watch {
    state: AppState,
    viewer: UserIdentity,
    only: Option<Uuid>,
    warned: HashSet<(Uuid, DateTime<Utc>)>,
}

enum Step {
    Skip,
    Deliver(Vec<LoginSessionEvent>),
    DeliverAndStop(LoginSessionEvent),
    Stop(AppError),
}

impl Watch {
    fn concerns(&self, login_session_id: Uuid) -> bool {
        self.only.is_none_or(|only| only == login_session_id)
    }

    async fn on_event(&mut self, event: &Event) -> Step {
        match event {
            Event::LoginSession(change)
                if change.user_id == self.viewer.user_id && self.concerns(change.login_session_id) =>
            {
                let delivered = LoginSessionEvent::from(change);
                if change.login_session_id == self.viewer.login_session_id
                    && change.change != LoginSessionChange::ExpiringSoon
                {
                    // This connection's own login session ended: tell it, then stop.
                    Step::DeliverAndStop(delivered)
                } else {
                    Step::Deliver(vec![delivered])
                }
            }
            Event::Tick(now) => match self.warnings(*now).await {
                Ok(warnings) if warnings.is_empty() => Step::Skip,
                Ok(warnings) => Step::Deliver(warnings),
                Err(error) => Step::Stop(error),
            },
            _ => Step::Skip,
        }
    }

    /// EXPIRING_SOON for each open login session of the viewer whose warning
    /// is due and not yet sent for its current deadline.
    async fn warnings(&mut self, now: DateTime<Utc>) -> Result<Vec<LoginSessionEvent>, AppError> {
        let mut query = session_log::Entity::find()
            .filter(session_log::Column::UserId.eq(self.viewer.user_id))
            .filter(session_log::Column::LogoutAt.is_null());
        if let Some(only) = self.only {
            query = query.filter(session_log::Column::Id.eq(only));
        }
        // A login session that has just ended is simply not warned about:
        // the event announcing its end, already on its way, ends the stream.
        let open = query.all(&self.state.db).await?;
        let mut warnings = Vec::new();
        for log in open {
            let settings = effective_for_user(
                &self.state.db,
                &self.state.settings_cache,
                log.user_id,
                log.tenant_id,
            )
            .await?;
            let due = deadline(&log, &settings);
            if now >= warning_at(due, &settings) && now < due.at && self.warned.insert((log.id, due.at)) {
                warnings.push(LoginSessionEvent {
                    kind: LoginSessionEventKind::ExpiringSoon,
                    login_session_id: log.id,
                    end_reason: None,
                    expires_at: Some(due.at),
                    occurred_at: now,
                });
            }
        }
        Ok(warnings)
    }
}

/// Login-session subscriptions.
#[derive(Default)]
pub struct LoginSessionsSubscription;

#[Subscription]
impl LoginSessionsSubscription {
    /// Your login sessions: EXPIRING_SOON the warning period before an idle
    /// or absolute timeout, then EXPIRED, REVOKED or LOGGED_OUT. When the
    /// connection's own login session ends, that event is the last.
    async fn login_session_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this login session (default: all of yours).")] login_session_id: Option<Uuid>,
    ) -> Result<impl Stream<Item = Result<LoginSessionEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        let state = ctx.state()?.clone();
        let receiver = state.events.subscribe();
        let watch = Watch {
            state,
            viewer,
            only: login_session_id,
            warned: HashSet::new(),
        };
        let pending: Vec<LoginSessionEvent> = Vec::new();
        Ok(stream::unfold(
            Some((receiver, watch, pending)),
            |carry| async move {
                let (mut receiver, mut watch, mut pending) = carry?;
                loop {
                    if let Some(next) = pending.pop() {
                        return Some((Ok(next), Some((receiver, watch, pending))));
                    }
                    match receiver.recv().await {
                        Ok(event) => match watch.on_event(&event).await {
                            Step::Skip => {}
                            Step::Deliver(mut events) => {
                                events.reverse();
                                pending = events;
                            }
                            Step::DeliverAndStop(event) => return Some((Ok(event), None)),
                            Step::Stop(error) => return Some((Err(error.into()), None)),
                        },
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "a login-session subscriber fell behind");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}
