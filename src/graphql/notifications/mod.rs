//! Notifications for the notification service: what guardians are to be
//! told, followed from the durable event log with cursors (delivered at
//! least once: resume with `after`, deduplicate on `eventId`).

mod webhooks;

use async_graphql::{Enum, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::auth::Identity;
use crate::config::ServiceGrant;
use crate::error::AppError;
use crate::events::{Event, Logged};
use crate::graphql::{ContextExt, feed_after, feed_stream};

/// What a notification is about. More kinds will come: a receiver ignores
/// (and acknowledges) kinds it does not know.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// A supervised user ended a session early whose config has
    /// `notifyOnUnlock`: its guardian is to be told, with the custom message.
    Unlock,
}

/// Something a guardian is to be told.
#[derive(SimpleObject, Debug, Clone)]
pub struct Notification {
    /// Its cursor, and its identity: the same notification delivered twice
    /// has the same `eventId` (it is the webhook's `webhook-id` too).
    pub event_id: String,
    /// What it is about.
    pub kind: NotificationKind,
    /// The tenant.
    pub tenant_id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// The supervised user.
    pub user_id: Uuid,
    /// The guardian to tell.
    pub guardian_id: Uuid,
    /// The session config's custom message.
    pub message: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// The notification an event is, if it is one.
pub(crate) fn notification_of(logged: &Logged) -> Option<Notification> {
    match &logged.event {
        Event::Unlock(unlock) => Some(Notification {
            event_id: logged.cursor(),
            kind: NotificationKind::Unlock,
            tenant_id: unlock.tenant_id,
            session_id: unlock.session_id,
            user_id: unlock.user_id,
            guardian_id: unlock.guardian_id,
            message: unlock.message.clone(),
            occurred_at: unlock.occurred_at,
        }),
        _ => None,
    }
}

pub use webhooks::{
    WebhookAttempt, WebhookDelivery, WebhookDeliveryKind, WebhookDeliveryStatus, WebhookEndpoint,
    WebhookSecret, WebhooksMutation, WebhooksQuery,
};

/// The topics of the log that hold notifications.
const NOTIFICATION_TOPICS: &[&str] = &["UNLOCK"];

/// The notification service's subscription.
#[derive(Default)]
pub struct NotificationsSubscription;

#[Subscription]
impl NotificationsSubscription {
    /// For the notification service (service credential granted
    /// `notifications`): every notification of every tenant, in order, once
    /// each per subscription; with `after` (the last `eventId` processed),
    /// every one since it first. Delivery is at least once across
    /// reconnections: deduplicate on `eventId`.
    async fn notifications(
        &self,
        ctx: &async_graphql::Context<'_>,
        #[graphql(desc = "Only these kinds (all when omitted).")] kinds: Option<Vec<NotificationKind>>,
        #[graphql(desc = "Resume after this `eventId`: every notification since it, then live.")]
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<Notification>>> {
        let Identity::Service(service) = ctx.identity() else {
            return Err(AppError::forbidden(
                "notifications is for the notification service's credential; guardians follow unlockNotifications",
            )
            .into());
        };
        service.require(ServiceGrant::Notifications)?;
        let feed = feed_after(ctx.state()?, after.as_deref(), NOTIFICATION_TOPICS, None).await?;
        Ok(feed_stream(feed, move |logged| {
            notification_of(logged).filter(|notification| {
                kinds
                    .as_ref()
                    .is_none_or(|kinds| kinds.contains(&notification.kind))
            })
        }))
    }
}
