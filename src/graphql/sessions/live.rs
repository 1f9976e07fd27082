//! Live session status for the guardian dashboard: every start, end,
//! expiry, revocation and config change, delivered only to subscribers
//! allowed to see it (checked per event, in memory), from every server
//! instance; ended with the reason when the subscriber's login session
//! ends or their tenant or role changes. Live subscriptions are shared
//! (`graphql::fanout`): each event's payload is resolved once for every
//! subscriber of the same document.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use super::types::{Session, SessionStatus};
use crate::error::AppError;
use crate::events::{self, Event, Logged, SessionChange};
use crate::graphql::fanout::{SharedField, SharedSource, Subscriber, Verdict};
use crate::graphql::{ContextExt, feed_after};
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

#[Object(serial)]
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
        let found = if ctx.data_opt::<Arc<SharedSource>>().is_some() && ctx.scope().is_err() {
            // A tenant's group: each of its subscribers was admitted to
            // this event by the rule that scopes reads of the session.
            service::find_session_of_event(&state.db, self.change.tenant_id, self.change.session_id).await
        } else {
            service::find_session(&state.db, &ctx.scope()?, self.change.session_id).await
        };
        match found {
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

impl Subscriber {
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
    ) -> Result<BoxStream<'static, Result<SessionStatusEvent>>> {
        let interest = Interest {
            session_id,
            user_id,
            guardian_id,
        };
        if let Some(source) = ctx.data_opt::<Arc<SharedSource>>() {
            // A group's run: every event of its tenant that matches; each
            // subscriber admits what it may see.
            let tenant_id = source.tenant_id;
            let feed = feed_after(ctx.state()?, None, &["SESSION"], Some(tenant_id)).await?;
            let pick = move |logged: &Logged| status_event(logged, interest, tenant_id);
            return Ok(source.clone().stream(feed, pick).boxed());
        }
        let (subscriber, live) = Subscriber::new(ctx)?;
        subscriber.warm().await?;
        let tenant = Some(subscriber.scope.tenant_id);
        let feed = feed_after(&subscriber.state, after.as_deref(), &["SESSION"], tenant).await?;
        Ok(subscriber
            .stream(live, feed, move |subscriber, logged| async move {
                let Some(event) = status_event(&logged, interest, subscriber.scope.tenant_id) else {
                    return Verdict::Skip;
                };
                admit_status(&subscriber, &logged).await.map(|()| event)
            })
            .boxed())
    }

    /// For guardians: a notification whenever a session you supervise is
    /// ended early and its config has `notifyOnUnlock`, with its custom message.
    async fn unlock_notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Resume after this `eventId`: first the notifications since it, then live.")]
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<UnlockNotification>>> {
        if let Some(source) = ctx.data_opt::<Arc<SharedSource>>() {
            let tenant_id = source.tenant_id;
            let feed = feed_after(ctx.state()?, None, &["UNLOCK"], Some(tenant_id)).await?;
            let pick = move |logged: &Logged| unlock_notification(logged, tenant_id);
            return Ok(source.clone().stream(feed, pick).boxed());
        }
        let (subscriber, live) = Subscriber::new(ctx)?;
        subscriber.warm().await?;
        let tenant = Some(subscriber.scope.tenant_id);
        let feed = feed_after(&subscriber.state, after.as_deref(), &["UNLOCK"], tenant).await?;
        Ok(subscriber
            .stream(live, feed, |subscriber, logged| async move {
                let Some(notification) = unlock_notification(&logged, subscriber.scope.tenant_id) else {
                    return Verdict::Skip;
                };
                admit_unlock(&subscriber, &logged).await.map(|()| notification)
            })
            .boxed())
    }
}

/// The event as `sessionStatusChanged` gives it, if it is one that
/// matches the subscription's arguments in `tenant_id` (the cheap checks:
/// nothing of another tenant is visible).
fn status_event(logged: &Logged, interest: Interest, tenant_id: Uuid) -> Option<SessionStatusEvent> {
    let Event::Session(change) = &logged.event else {
        return None;
    };
    (interest.matches(change) && change.tenant_id == tenant_id).then(|| SessionStatusEvent {
        cursor: logged.cursor(),
        change: change.clone(),
    })
}

/// The notification as `unlockNotifications` gives it, if the event is
/// one of `tenant_id`.
fn unlock_notification(logged: &Logged, tenant_id: Uuid) -> Option<UnlockNotification> {
    let Event::Unlock(unlock) = &logged.event else {
        return None;
    };
    (unlock.tenant_id == tenant_id).then(|| UnlockNotification {
        event_id: logged.cursor(),
        session_id: unlock.session_id,
        user_id: unlock.user_id,
        message: unlock.message.clone(),
        occurred_at: unlock.occurred_at,
    })
}

/// Whether the subscriber may see this session event.
async fn admit_status(subscriber: &Subscriber, logged: &Logged) -> Verdict<()> {
    let Event::Session(change) = &logged.event else {
        return Verdict::Skip;
    };
    subscriber
        .admit(change.tenant_id, change.user_id, change.guardian_id)
        .await
}

/// Whether the subscriber is the guardian this unlock notification is for
/// (and still supervises the user).
async fn admit_unlock(subscriber: &Subscriber, logged: &Logged) -> Verdict<()> {
    let Event::Unlock(unlock) = &logged.event else {
        return Verdict::Skip;
    };
    if unlock.guardian_id != subscriber.viewer.user_id {
        return Verdict::Skip;
    }
    subscriber
        .admit(unlock.tenant_id, unlock.user_id, Some(unlock.guardian_id))
        .await
}

fn warm(subscriber: &Subscriber) -> BoxFuture<'_, Result<(), AppError>> {
    Box::pin(subscriber.warm())
}

fn shared_status<'a>(subscriber: &'a Subscriber, logged: &'a Logged) -> BoxFuture<'a, Verdict<()>> {
    Box::pin(admit_status(subscriber, logged))
}

fn shared_unlock<'a>(subscriber: &'a Subscriber, logged: &'a Logged) -> BoxFuture<'a, Verdict<()>> {
    Box::pin(admit_unlock(subscriber, logged))
}

/// The session subscriptions whose results are shared (see
/// `graphql::fanout`), with the fields their events carry.
pub(crate) static SHARED_FIELDS: [SharedField; 2] = [
    SharedField {
        name: "sessionStatusChanged",
        item_type: "SessionStatusEvent",
        carried: &[
            ("SessionStatusEvent", "eventId", None),
            ("SessionStatusEvent", "change", None),
            ("SessionStatusEvent", "sessionId", None),
            ("SessionStatusEvent", "status", None),
            ("SessionStatusEvent", "userId", None),
            ("SessionStatusEvent", "guardianId", None),
            ("SessionStatusEvent", "occurredAt", None),
            ("SessionStatusEvent", "session", Some("Session")),
            ("Session", "id", None),
            ("Session", "name", None),
            ("Session", "sessionType", None),
            ("Session", "status", None),
            ("Session", "startTime", None),
            ("Session", "endTime", None),
            ("Session", "plannedEndTime", None),
            ("Session", "endedAt", None),
            ("Session", "endKind", None),
            ("Session", "createdAt", None),
            ("Session", "updatedAt", None),
        ],
        warm,
        admit: shared_status,
    },
    SharedField {
        name: "unlockNotifications",
        item_type: "UnlockNotification",
        carried: &[
            ("UnlockNotification", "eventId", None),
            ("UnlockNotification", "sessionId", None),
            ("UnlockNotification", "userId", None),
            ("UnlockNotification", "message", None),
            ("UnlockNotification", "occurredAt", None),
        ],
        warm,
        admit: shared_unlock,
    },
];

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, Selection};

    use super::SHARED_FIELDS;
    use crate::graphql::fanout::carried_only;

    /// Whether the subscription `query` selects only what its event carries.
    fn carried(query: &str) -> bool {
        let document = parse_query(query).unwrap_or_else(|error| panic!("{error}"));
        let DocumentOperations::Single(operation) = &document.operations else {
            panic!("one anonymous operation");
        };
        let Some(Selection::Field(root)) = operation
            .node
            .selection_set
            .node
            .items
            .first()
            .map(|item| &item.node)
        else {
            panic!("a root field");
        };
        carried_only(&SHARED_FIELDS[0], &document, &root.node.selection_set.node)
    }

    #[test]
    fn only_a_document_of_fields_the_event_carries_is_shared_by_the_tenant() {
        assert!(carried(
            "subscription { sessionStatusChanged { change renamed: sessionId __typename session { name status } } }"
        ));
        assert!(carried(
            "subscription { sessionStatusChanged { ...f } } \
             fragment f on SessionStatusEvent { session { ...g } } fragment g on Session { id ...g }"
        ));
        assert!(carried(
            "subscription($x: Boolean!) { sessionStatusChanged { session @include(if: $x) { name } } }"
        ));
        for reaching in [
            "subscription { sessionStatusChanged { session { config { label } } } }",
            "subscription { sessionStatusChanged { ...f } } fragment f on SessionStatusEvent { session { user { id } } }",
            "subscription { sessionStatusChanged { ... on SessionStatusEvent { session { modules { id } } } } }",
            "subscription { sessionStatusChanged { session { id: tenant { id } } } }",
            "subscription { sessionStatusChanged { ...missing } }",
            "subscription { sessionStatusChanged { change { name } } }",
        ] {
            assert!(!carried(reaching), "{reaching}");
        }
    }
}
