//! Live login-session events for the user's own clients (a warning before a
//! login session expires, an extension, then its expiry or revocation), and
//! for a tenant administrator watching one login session of a member.

use async_graphql::{Context, Enum, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::stream;
use uuid::Uuid;

use std::collections::VecDeque;
use std::sync::Arc;

use entity::session_log;
use sea_orm::{EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use crate::auth::UserIdentity;
use crate::error::AppError;
use crate::events::{Event, Feed, Logged, LoginSessionChange, LoginSessionEvent as BusEvent};
use crate::graphql::{ContextExt, feed_after, live_identity};
use crate::services::live_identity::{LiveIdentity, Standing};
use crate::services::scope::Scope;

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
    /// connection whose context moved end with FORBIDDEN.
    TenantSwitched,
    /// The user chose to stay signed in (`extendLoginSession`, from any of
    /// their clients): `expiresAt` is the new deadline, so a "stay signed
    /// in?" prompt shown on another client can close.
    Extended,
}

impl From<LoginSessionChange> for LoginSessionEventKind {
    fn from(change: LoginSessionChange) -> Self {
        match change {
            LoginSessionChange::ExpiringSoon => Self::ExpiringSoon,
            LoginSessionChange::Expired => Self::Expired,
            LoginSessionChange::Revoked => Self::Revoked,
            LoginSessionChange::LoggedOut => Self::LoggedOut,
            LoginSessionChange::TenantSwitched => Self::TenantSwitched,
            LoginSessionChange::Extended => Self::Extended,
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

/// One subscriber: whose login sessions, and which.
struct Watch {
    viewer: Arc<UserIdentity>,
    /// Whose login sessions: the viewer's own, or (a tenant's admin) a member's.
    owner: Uuid,
    only: Option<Uuid>,
    /// The scope an admin watches a member's login session in.
    admin_scope: Option<Scope>,
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
        if change.user_id != self.owner || self.only.is_some_and(|only| only != change.login_session_id) {
            return Step::Skip;
        }
        let delivered = LoginSessionEvent::of(logged.cursor(), change);
        let ended = !matches!(
            change.change,
            LoginSessionChange::ExpiringSoon
                | LoginSessionChange::TenantSwitched
                | LoginSessionChange::Extended
        );
        // An administrator's watch ends with the login session, and when it
        // leaves the administrator's tenant.
        let watch_over =
            self.admin_scope.is_some() && (ended || change.change == LoginSessionChange::TenantSwitched);
        if (ended && change.login_session_id == self.viewer.login_session_id) || watch_over {
            // This connection's own login session (or the one watched) ended:
            // tell it, then stop.
            Step::DeliverAndStop(delivered)
        } else {
            Step::Deliver(delivered)
        }
    }
}

/// What a login-session subscription does next.
struct Carry {
    feed: Feed,
    live: LiveIdentity,
    watch: Watch,
    /// Delivered before the stream ends (its last items).
    last: VecDeque<Result<LoginSessionEvent>>,
    finished: bool,
}

impl Carry {
    /// Whether the connection's identity still admits the subscription: a
    /// login session that ended ends it (after the events already here);
    /// an admin's change of tenant or role ends the watch of a member.
    async fn check(&mut self) -> bool {
        let ending = match self.live.current().await {
            Standing::Ended(ending) => ending.error(),
            _ => match &self.watch.admin_scope {
                Some(scope) => match self.live.admits(scope).await {
                    Ok(()) => return true,
                    Err(error) => error,
                },
                None => return true,
            },
        };
        // What was already delivered to this feed (the end itself, most
        // likely) goes first.
        while let Some(logged) = self.feed.try_next() {
            match self.watch.on_event(&logged) {
                Step::Skip => {}
                Step::Deliver(event) => self.last.push_back(Ok(event)),
                Step::DeliverAndStop(event) => {
                    self.last.push_back(Ok(event));
                    self.finished = true;
                    return false;
                }
            }
        }
        self.last.push_back(Err(ending.into()));
        self.finished = true;
        false
    }

    async fn next(mut self) -> Option<(Result<LoginSessionEvent>, Self)> {
        loop {
            if let Some(item) = self.last.pop_front() {
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            let next = tokio::select! {
                biased;
                () = self.live.changed() => None,
                next = self.feed.next() => Some(next),
            };
            let Some(next) = next else {
                self.check().await;
                continue;
            };
            match next {
                Ok(Some(logged)) => match self.watch.on_event(&logged) {
                    Step::Skip => {}
                    Step::Deliver(event) => {
                        if self.check().await {
                            return Some((Ok(event), self));
                        }
                    }
                    Step::DeliverAndStop(event) => {
                        self.finished = true;
                        return Some((Ok(event), self));
                    }
                },
                Ok(None) => return None,
                Err(error) => {
                    self.finished = true;
                    return Some((Err(error.into()), self));
                }
            }
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
    /// connection's own login session ends, that event is the last, and the
    /// subscription then ends with UNAUTHENTICATED (`extensions.reason`).
    ///
    /// A tenant's administrator may watch one login session of a member
    /// (`loginSessionId`), as `loginSessions` lets them read it; anyone
    /// else gets NOT_FOUND. That watch ends when the login session does, or
    /// with FORBIDDEN when the administrator's tenant or role changes.
    async fn login_session_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this login session (default: all of yours).")] login_session_id: Option<Uuid>,
        #[graphql(desc = "Resume after this `eventId`: first the events since it, then live.")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<LoginSessionEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        let state = ctx.state()?;
        let live = live_identity(ctx)?;
        let (owner, admin_scope) = match login_session_id {
            Some(id) => {
                let owner = session_log::Entity::find_by_id(id)
                    .select_only()
                    .column(session_log::Column::UserId)
                    .into_tuple::<Uuid>()
                    .one(&state.db)
                    .await
                    .map_err(AppError::from)?;
                match owner {
                    Some(owner) if owner == viewer.user_id => (owner, None),
                    Some(owner) => {
                        let scope = ctx.scope()?;
                        let readable = session_log::Entity::find_by_id(id)
                            .filter(scope.login_sessions())
                            .count(&state.db)
                            .await
                            .map_err(AppError::from)?
                            > 0;
                        if !readable || !scope.is_tenant_admin() {
                            return Err(not_found().into());
                        }
                        (owner, Some(scope))
                    }
                    None => return Err(not_found().into()),
                }
            }
            None => (viewer.user_id, None),
        };
        let watch = Watch {
            viewer,
            owner,
            only: login_session_id,
            admin_scope,
        };
        let feed = feed_after(state, after.as_deref(), &["LOGIN_SESSION"], None).await?;
        let carry = Carry {
            feed,
            live,
            watch,
            last: VecDeque::new(),
            finished: false,
        };
        Ok(stream::unfold(carry, Carry::next))
    }
}

fn not_found() -> AppError {
    AppError::NotFound {
        resource: "login session",
    }
}
