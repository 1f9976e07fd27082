//! The event bus: one place where every live change is published, in two
//! implementations behind one type.
//!
//! - In-process: a tokio broadcast channel. Enough for SQLite, which is a
//!   single-instance deployment.
//! - PostgreSQL: the same channel, plus `NOTIFY` on publish and a `LISTEN`
//!   task that re-broadcasts what other instances published, so that every
//!   instance of a horizontally scaled deployment delivers every event.
//!
//! Publish only after the change is committed: subscribers re-read what the
//! event points at.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The PostgreSQL channel every instance listens on.
pub const CHANNEL: &str = "session_manager_events";

/// How many events a slow subscriber may fall behind before it misses some.
const CAPACITY: usize = 1024;

/// What happened to a guardian–user session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionChange {
    /// It was started or created.
    Started,
    /// Its name, type or times changed.
    Updated,
    /// Its config (label, lock profile, notification) changed.
    ConfigChanged,
    /// It was ended.
    Ended,
    /// It passed its end time.
    Expired,
    /// It was revoked.
    Revoked,
    /// It was deleted.
    Deleted,
}

/// A change of a guardian–user session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEvent {
    /// What happened.
    pub change: SessionChange,
    /// The session.
    pub session_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// Its guardian, if any.
    pub guardian_id: Option<Uuid>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// A message for a guardian: their session was unlocked (ended early).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockNotification {
    /// The session.
    pub session_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The supervised user who unlocked.
    pub user_id: Uuid,
    /// The guardian to notify.
    pub guardian_id: Uuid,
    /// The session config's custom message.
    pub message: Option<String>,
    /// When it was unlocked.
    pub occurred_at: DateTime<Utc>,
}

/// What happened to a login session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoginSessionChange {
    /// It will expire (idle or absolute timeout) within the warning period.
    ExpiringSoon,
    /// It expired.
    Expired,
    /// It was revoked, evicted by a newer login, or invalidated by one.
    Revoked,
    /// The user logged out.
    LoggedOut,
}

/// A change of a login session, for its user's clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginSessionEvent {
    /// What happened.
    pub change: LoginSessionChange,
    /// The login session.
    pub login_session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// Why it ended (`session_logs.end_reason`), when it did.
    pub end_reason: Option<String>,
    /// When it expires (for `ExpiringSoon`) or expired.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// Which level of session settings changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "level", content = "id", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettingsScope {
    /// The system settings row.
    System,
    /// A tenant (district).
    Tenant(Uuid),
    /// A school.
    School(Uuid),
    /// A user's own override.
    User(Uuid),
}

/// Everything that travels on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// A session changed.
    Session(SessionEvent),
    /// A guardian is to be told of an early unlock.
    Unlock(UnlockNotification),
    /// Session settings changed at this level: every instance drops its
    /// cached settings for it and for everything beneath it.
    SettingsChanged(SettingsScope),
    /// A login session changed.
    LoginSession(LoginSessionEvent),
    /// The login-session sweeper ran at this instant (this instance only):
    /// subscriptions use it to warn of an expiry they see coming.
    Tick(DateTime<Utc>),
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: Uuid,
    event: Event,
}

/// Publishes events to every subscriber of every instance.
#[derive(Debug, Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    instance: Uuid,
    sender: broadcast::Sender<Arc<Event>>,
    notify: Option<DatabaseConnection>,
    listener: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl EventBus {
    /// An in-process bus.
    pub fn in_process() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self {
            inner: Arc::new(Inner {
                instance: Uuid::new_v4(),
                sender,
                notify: None,
                listener: None,
            }),
        }
    }

    /// The right bus for `db`: across instances on PostgreSQL, in-process
    /// otherwise. On PostgreSQL it is listening when this returns.
    pub async fn for_database(db: &DatabaseConnection) -> Result<Self, sea_orm::sqlx::Error> {
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(Self::in_process());
        }
        let instance = Uuid::new_v4();
        let (sender, _) = broadcast::channel(CAPACITY);
        let mut listener = PgListener::connect_with(db.get_postgres_connection_pool()).await?;
        listener.listen(CHANNEL).await?;
        let task = tokio::spawn(relay(listener, instance, sender.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                instance,
                sender,
                notify: Some(db.clone()),
                listener: Some(task),
            }),
        })
    }

    /// Receives every event published from now on, on any instance.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.sender.subscribe()
    }

    /// How many subscribers this instance has right now (tests wait for a
    /// subscription to be in place before triggering its events).
    pub fn subscriber_count(&self) -> usize {
        self.inner.sender.receiver_count()
    }

    /// Delivers `event` to this instance's subscribers only.
    pub fn publish_local(&self, event: Event) {
        let _receivers = self.inner.sender.send(Arc::new(event));
    }

    /// Publishes `event`: at once to this instance's subscribers, and through
    /// `NOTIFY` to the other instances. Call it after the change committed.
    pub async fn publish(&self, event: Event) {
        if let Some(db) = &self.inner.notify {
            let envelope = Envelope {
                origin: self.inner.instance,
                event: event.clone(),
            };
            match serde_json::to_string(&envelope) {
                Ok(payload) => {
                    let result = db
                        .execute_raw(Statement::from_sql_and_values(
                            DatabaseBackend::Postgres,
                            "SELECT pg_notify($1, $2)",
                            [CHANNEL.into(), payload.into()],
                        ))
                        .await;
                    if let Err(error) = result {
                        tracing::error!(%error, "could not notify other instances of an event");
                    }
                }
                Err(error) => tracing::error!(%error, "could not encode an event"),
            }
        }
        // No receiver is not an error: nobody is subscribed right now.
        let _receivers = self.inner.sender.send(Arc::new(event));
    }
}

/// Re-broadcasts what other instances publish. `recv` reconnects by itself
/// after a lost connection; other errors are retried after a pause.
async fn relay(mut listener: PgListener, instance: Uuid, sender: broadcast::Sender<Arc<Event>>) {
    loop {
        match listener.recv().await {
            Ok(notification) => match serde_json::from_str::<Envelope>(notification.payload()) {
                Ok(envelope) if envelope.origin == instance => {}
                Ok(envelope) => {
                    let _receivers = sender.send(Arc::new(envelope.event));
                }
                Err(error) => tracing::warn!(%error, "ignoring an undecodable event notification"),
            },
            Err(error) => {
                tracing::warn!(%error, "event listener lost its connection; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::Session(SessionEvent {
            change: SessionChange::Ended,
            session_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            guardian_id: None,
            occurred_at: DateTime::<Utc>::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn every_subscriber_receives_a_published_event() {
        let bus = EventBus::in_process();
        let (mut first, mut second) = (bus.subscribe(), bus.subscribe());
        let published = event();
        bus.publish(published.clone()).await;
        assert_eq!(first.recv().await.ok().as_deref(), Some(&published));
        assert_eq!(second.recv().await.ok().as_deref(), Some(&published));
    }

    #[test]
    fn events_survive_the_wire_format() {
        let envelope = Envelope {
            origin: Uuid::now_v7(),
            event: event(),
        };
        let json = serde_json::to_string(&envelope).unwrap_or_default();
        assert!(json.contains("\"type\":\"SESSION\""), "{json}");
        let back: Option<Envelope> = serde_json::from_str(&json).ok();
        assert_eq!(back.map(|envelope| envelope.event), Some(envelope.event));
    }
}
