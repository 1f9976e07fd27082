//! Live session status for the guardian dashboard: every start, end,
//! expiry, revocation and config change, delivered only to subscribers
//! allowed to see it (checked per event, in memory), from every server
//! instance; ended with the reason when the subscriber's login session
//! ends or their tenant or role changes.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::stream;
use uuid::Uuid;

use super::types::{Session, SessionStatus};
use crate::auth::UserIdentity;
use crate::error::AppError;
use crate::events::{self, Event, Feed, Logged, SessionChange};
use crate::graphql::{AppState, ContextExt, feed_after, live_identity};
use crate::services::live_identity::LiveIdentity;
use crate::services::scope::Scope;
use crate::services::sessions as service;

/// What happened to a session.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionChangeKind {
    /// Started or created.
    Started,
    /// Name, type or end time changed.
    Updated,
    /// Config changed.
    ConfigChanged,
    /// Ended.
    Ended,
    /// Passed its end time.
    Expired,
    /// Revoked.
    Revoked,
    /// Deleted.
    Deleted,
}

impl From<SessionChange> for SessionChangeKind {
    fn from(change: SessionChange) -> Self {
        match change {
            SessionChange::Started => Self::Started,
            SessionChange::Updated => Self::Updated,
            SessionChange::ConfigChanged => Self::ConfigChanged,
            SessionChange::Ended => Self::Ended,
            SessionChange::Expired => Self::Expired,
            SessionChange::Revoked => Self::Revoked,
            SessionChange::Deleted => Self::Deleted,
        }
    }
}

/// A change of a session, as pushed to subscribers.
pub struct SessionStatusEvent {
    cursor: String,
    change: events::SessionEvent,
}

#[Object]
impl SessionStatusEvent {
    /// This event's cursor: subscribe again with `after` set to the last one
    /// you received to get everything since, in order, without a gap.
    async fn event_id(&self) -> &str {
        &self.cursor
    }
    /// What happened.
    async fn change(&self) -> SessionChangeKind {
        self.change.change.into()
    }
    /// The session.
    async fn session_id(&self) -> Uuid {
        self.change.session_id
    }
    /// The status the change left it in (none once deleted).
    async fn status(&self) -> Option<SessionStatus> {
        match self.change.change {
            SessionChange::Started | SessionChange::Updated | SessionChange::ConfigChanged => {
                Some(SessionStatus::Active)
            }
            SessionChange::Ended => Some(SessionStatus::Ended),
            SessionChange::Expired => Some(SessionStatus::Expired),
            SessionChange::Revoked => Some(SessionStatus::Revoked),
            SessionChange::Deleted => None,
        }
    }
    /// The supervised user.
    async fn user_id(&self) -> Uuid {
        self.change.user_id
    }
    /// The guardian, if any.
    async fn guardian_id(&self) -> Option<Uuid> {
        self.change.guardian_id
    }
    /// When it happened.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.change.occurred_at
    }
    /// The session as this change left it (none once deleted).
    async fn session(&self, ctx: &Context<'_>) -> Result<Option<Session>> {
        if self.change.change == SessionChange::Deleted {
            return Ok(None);
        }
        // Carried by the event: no query per subscriber. The subscriber was
        // admitted to the event by the same rule that scopes the reads.
        if let Some(row) = &self.change.session {
            return Ok(Some(Session(row.clone())));
        }
        // An event logged before sessions were carried in it.
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        match service::find_session(&state.db, &scope, self.change.session_id).await {
            Ok(row) => Ok(Some(Session(row))),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

/// A guardian's session was unlocked (ended early) by the supervised user.
#[derive(SimpleObject)]
pub struct UnlockNotification {
    /// This event's cursor (see `SessionStatusEvent.eventId`).
    pub event_id: String,
    /// The session.
    pub session_id: Uuid,
    /// The user who unlocked it.
    pub user_id: Uuid,
    /// The session config's custom message.
    pub message: Option<String>,
    /// When it was unlocked.
    pub occurred_at: DateTime<Utc>,
}

/// Which session events a subscriber asked for.
#[derive(Debug, Clone, Copy, Default)]
struct Interest {
    session_id: Option<Uuid>,
    user_id: Option<Uuid>,
    guardian_id: Option<Uuid>,
}

impl Interest {
    fn matches(&self, event: &events::SessionEvent) -> bool {
        self.session_id.is_none_or(|id| id == event.session_id)
            && self.user_id.is_none_or(|id| id == event.user_id)
            && self.guardian_id.is_none_or(|id| Some(id) == event.guardian_id)
    }
}

/// What to do with one event for one subscriber.
enum Verdict<T> {
    Skip,
    Deliver(T),
    Stop(AppError),
}

/// The subscriber of one subscription: who they are and what they may see.
#[derive(Clone)]
struct Subscriber {
    state: AppState,
    viewer: Arc<UserIdentity>,
    scope: Scope,
}

impl Subscriber {
    fn new(ctx: &Context<'_>) -> Result<(Self, LiveIdentity), AppError> {
        let scope = ctx.scope()?;
        let viewer = ctx.viewer()?.clone();
        let live = live_identity(ctx)?;
        Ok((
            Self {
                state: ctx.state()?.clone(),
                viewer,
                scope,
            },
            live,
        ))
    }

    /// Loads the guardian links the subscriber's events will be checked
    /// against now, rather than all subscribers at once at the first event.
    async fn warm(&self) -> Result<(), AppError> {
        if self.viewer.role != Some(entity::tenant_membership::MembershipRole::Guardian) {
            return Ok(());
        }
        self.state
            .identity
            .supervised(&self.state.db, self.scope.tenant_id, self.viewer.user_id)
            .await?;
        Ok(())
    }

    /// Whether the subscriber may see a session with these participants,
    /// decided in memory (the guardian links come from the identity cache).
    async fn admit(&self, tenant_id: Uuid, user_id: Uuid, guardian_id: Option<Uuid>) -> Verdict<()> {
        let supervises = async || {
            self.state
                .identity
                .supervised(&self.state.db, tenant_id, self.viewer.user_id)
                .await
                .map(|supervised| supervised.contains(&user_id))
        };
        match self
            .scope
            .sees_session(tenant_id, user_id, guardian_id, supervises)
            .await
        {
            Ok(true) => Verdict::Deliver(()),
            Ok(false) => Verdict::Skip,
            Err(error) => Verdict::Stop(error),
        }
    }

    /// A stream of what `pick` makes of the events of `feed`, for as long
    /// as the connection's identity admits the subscription: it ends with
    /// the reason as soon as the login session ends or the tenant or role
    /// changes, not at the next event, and delivers nothing after that.
    fn stream<T, F, Fut>(
        self,
        live: LiveIdentity,
        feed: Feed,
        pick: F,
    ) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
    where
        T: Send + 'static,
        F: Fn(Subscriber, Arc<Logged>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict<T>> + Send,
    {
        stream::unfold(Some((feed, live, self, pick)), |state| async move {
            let (mut feed, mut live, subscriber, pick) = state?;
            loop {
                let next = tokio::select! {
                    biased;
                    () = live.changed() => None,
                    next = feed.next() => Some(next),
                };
                let Some(next) = next else {
                    if let Err(error) = live.admits(&subscriber.scope).await {
                        return Some((Err(error.into()), None));
                    }
                    continue;
                };
                match next {
                    Ok(Some(logged)) => match pick(subscriber.clone(), logged).await {
                        Verdict::Skip => {}
                        Verdict::Deliver(item) => {
                            // Nothing after the end, even an event that was
                            // already on its way.
                            if let Err(error) = live.admits(&subscriber.scope).await {
                                return Some((Err(error.into()), None));
                            }
                            return Some((Ok(item), Some((feed, live, subscriber, pick))));
                        }
                        Verdict::Stop(error) => return Some((Err(error.into()), None)),
                    },
                    Ok(None) => return None,
                    Err(error) => return Some((Err(error.into()), None)),
                }
            }
        })
    }
}

/// Session subscriptions (WebSocket, authenticated by `connection_init`).
#[derive(Default)]
pub struct SessionsSubscription;

#[Subscription]
impl SessionsSubscription {
    /// Every start, update, config change, end, expiry, revocation and
    /// deletion of the sessions you may see, optionally narrowed to one
    /// session, user or guardian.
    async fn session_status_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this session.")] session_id: Option<Uuid>,
        #[graphql(desc = "Only this user's sessions.")] user_id: Option<Uuid>,
        #[graphql(desc = "Only this guardian's sessions.")] guardian_id: Option<Uuid>,
        #[graphql(
            desc = "Resume after this `eventId`: first the events since it that you may see, then live."
        )]
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<SessionStatusEvent>> + use<>> {
        let interest = Interest {
            session_id,
            user_id,
            guardian_id,
        };
        let (subscriber, live) = Subscriber::new(ctx)?;
        subscriber.warm().await?;
        let tenant = Some(subscriber.scope.tenant_id);
        let feed = feed_after(&subscriber.state, after.as_deref(), &["SESSION"], tenant).await?;
        Ok(
            subscriber.stream(live, feed, move |subscriber, logged| async move {
                let Event::Session(change) = &logged.event else {
                    return Verdict::Skip;
                };
                // The cheap checks first: nothing of another tenant is visible.
                if !interest.matches(change) || change.tenant_id != subscriber.scope.tenant_id {
                    return Verdict::Skip;
                }
                match subscriber
                    .admit(change.tenant_id, change.user_id, change.guardian_id)
                    .await
                {
                    Verdict::Deliver(()) => Verdict::Deliver(SessionStatusEvent {
                        cursor: logged.cursor(),
                        change: change.clone(),
                    }),
                    Verdict::Skip => Verdict::Skip,
                    Verdict::Stop(error) => Verdict::Stop(error),
                }
            }),
        )
    }

    /// For guardians: a notification whenever a session you supervise is
    /// ended early and its config has `notifyOnUnlock`, with its custom message.
    async fn unlock_notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Resume after this `eventId`: first the notifications since it, then live.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<UnlockNotification>> + use<>> {
        let (subscriber, live) = Subscriber::new(ctx)?;
        subscriber.warm().await?;
        let tenant = Some(subscriber.scope.tenant_id);
        let feed = feed_after(&subscriber.state, after.as_deref(), &["UNLOCK"], tenant).await?;
        Ok(subscriber.stream(live, feed, |subscriber, logged| async move {
            let Event::Unlock(unlock) = &logged.event else {
                return Verdict::Skip;
            };
            if unlock.guardian_id != subscriber.viewer.user_id
                || unlock.tenant_id != subscriber.scope.tenant_id
            {
                return Verdict::Skip;
            }
            match subscriber
                .admit(unlock.tenant_id, unlock.user_id, Some(unlock.guardian_id))
                .await
            {
                Verdict::Deliver(()) => Verdict::Deliver(UnlockNotification {
                    event_id: logged.cursor(),
                    session_id: unlock.session_id,
                    user_id: unlock.user_id,
                    message: unlock.message.clone(),
                    occurred_at: unlock.occurred_at,
                }),
                Verdict::Skip => Verdict::Skip,
                Verdict::Stop(error) => Verdict::Stop(error),
            }
        }))
    }
}
