//! Live login-session events for the user's own clients: a warning before a
//! login session expires, then its expiry or revocation.

use async_graphql::{Context, Enum, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::stream;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::AppError;
use crate::events::{Event, Logged, LoginSessionChange, LoginSessionEvent as BusEvent};
use crate::graphql::ContextExt;
use crate::graphql::feed_after;

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
    /// Its tenant context moved to another tenant (switched, or reset to the
    /// default tenant when access was lost). Session subscriptions of a
    /// connection whose context moved end with FORBIDDEN at their next event.
    TenantSwitched,
}

impl From<LoginSessionChange> for LoginSessionEventKind {
    fn from(change: LoginSessionChange) -> Self {
        match change {
            LoginSessionChange::ExpiringSoon => Self::ExpiringSoon,
            LoginSessionChange::Expired => Self::Expired,
            LoginSessionChange::Revoked => Self::Revoked,
            LoginSessionChange::LoggedOut => Self::LoggedOut,
            LoginSessionChange::TenantSwitched => Self::TenantSwitched,
        }
    }
}

/// A change of one of your login sessions.
#[derive(SimpleObject, Clone)]
pub struct LoginSessionEvent {
    /// This event's cursor: subscribe again with `after` set to the last one
    /// you received to get everything since, in order, without a gap.
    pub event_id: String,
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

impl LoginSessionEvent {
    fn of(cursor: String, event: &BusEvent) -> Self {
        Self {
            event_id: cursor,
            kind: event.change.into(),
            login_session_id: event.login_session_id,
            end_reason: event.end_reason.clone(),
            expires_at: event.expires_at,
            occurred_at: event.occurred_at,
        }
    }
}

/// One subscriber: who, and which of their login sessions.
struct Watch {
    viewer: UserIdentity,
    only: Option<Uuid>,
}

enum Step {
    Skip,
    Deliver(LoginSessionEvent),
    DeliverAndStop(LoginSessionEvent),
}

impl Watch {
    fn on_event(&self, logged: &Logged) -> Step {
        let Event::LoginSession(change) = &logged.event else {
            return Step::Skip;
        };
        if change.user_id != self.viewer.user_id
            || self.only.is_some_and(|only| only != change.login_session_id)
        {
            return Step::Skip;
        }
        let delivered = LoginSessionEvent::of(logged.cursor(), change);
        if change.login_session_id == self.viewer.login_session_id
            && !matches!(
                change.change,
                LoginSessionChange::ExpiringSoon | LoginSessionChange::TenantSwitched
            )
        {
            // This connection's own login session ended: tell it, then stop.
            Step::DeliverAndStop(delivered)
        } else {
            Step::Deliver(delivered)
        }
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
        #[graphql(desc = "Resume after this `eventId`: first the events since it, then live.")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<LoginSessionEvent>> + use<>> {
        let watch = Watch {
            viewer: ctx.viewer()?.clone(),
            only: login_session_id,
        };
        let feed = feed_after(ctx.state()?, after.as_deref(), &["LOGIN_SESSION"], None).await?;
        Ok(stream::unfold(Some((feed, watch)), |carry| async move {
            let (mut feed, watch) = carry?;
            loop {
                match feed.next().await {
                    Ok(Some(logged)) => match watch.on_event(&logged) {
                        Step::Skip => {}
                        Step::Deliver(event) => return Some((Ok(event), Some((feed, watch)))),
                        Step::DeliverAndStop(event) => return Some((Ok(event), None)),
                    },
                    Ok(None) => return None,
                    Err(error) => return Some((Err(AppError::into(error)), None)),
                }
            }
        }))
    }
}
