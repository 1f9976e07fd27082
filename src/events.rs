//! The event bus: how the events of the durable log reach this instance's
//! subscribers.
//!
//! The log (`events`, see [`crate::event_log`]) is the only source. A unit
//! of work appends its events, commits, then *wakes* the bus: in-process on
//! the instance that wrote, and through PostgreSQL `NOTIFY` (an empty
//! payload: a wake-up, not the event) on every other instance. Each
//! instance has one delivery task that reads the log from the last id it
//! delivered and broadcasts each event, in id order, once, to its
//! subscribers. Because it reads from where it was, a lost wake-up costs
//! only latency: the listener that detects a lost connection wakes it to
//! catch up, and a slow poll (`events.poll_interval_secs`) covers a lost
//! `NOTIFY`.
//!
//! A subscription reads through a [`Feed`]: live from now, or replayed from
//! a cursor (`after`) and then live, with no gap and no duplicate at the
//! seam; one that falls behind the broadcast replays from the log instead
//! of missing events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::EventLogSettings;
use crate::error::{AppError, AppResult};
use crate::event_log::{self, LogFilter};

/// The PostgreSQL channel every instance listens on for wake-ups.
pub(crate) const CHANNEL: &str = "session_manager_events";

/// How many events a slow subscriber may fall behind the broadcast before
/// it replays from the log instead.
const CAPACITY: usize = 1024;

/// How many events one read of the log takes.
const PAGE: u64 = 256;

/// Pause before reading again after the log could not be read.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// The session as this change left it (none once deleted, and in events
    /// logged before it was carried): subscribers read it from here, not
    /// from the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<entity::session::Model>,
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

/// The merged lock state of a user changed (see
/// [`crate::services::lock_state`]): what is in force for them now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockStateEvent {
    /// The supervised user.
    pub user_id: Uuid,
    /// Their merged state after the change.
    pub state: crate::services::lock_state::MergedLockState,
    /// When it changed.
    pub occurred_at: DateTime<Utc>,
}

/// Webhook deliveries were queued for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookQueuedEvent {
    /// The endpoint's tenant.
    pub tenant_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// When.
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
    /// Its tenant context moved to another tenant (switched by the user, or
    /// reset to the default when access was lost).
    TenantSwitched,
    /// The user asked to stay signed in (`extendLoginSession`): its idle
    /// deadline moved to `expires_at`.
    Extended,
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
    /// When it expires (for `ExpiringSoon` and `Extended`) or expired.
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

/// What happened to an account itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountChange {
    /// Its name, e-mail address, password or limits changed.
    Updated,
    /// It was deleted.
    Deleted,
    /// It became a super admin.
    Promoted,
    /// It stopped being a super admin.
    Demoted,
}

/// A change of an account, for whatever holds what it knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEvent {
    /// What happened.
    pub change: AccountChange,
    /// The account.
    pub user_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What happened to a membership of an account in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MembershipChange {
    /// The account joined the tenant (added, or an invitation accepted).
    Added,
    /// Its role changed.
    RoleChanged,
    /// Its school in the tenant changed.
    SchoolChanged,
    /// It became the account's default tenant (the previous default
    /// stopped being it).
    DefaultChanged,
    /// It left the tenant (removed, or the school or tenant went away).
    Removed,
}

/// A change of a membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipEvent {
    /// What happened.
    pub change: MembershipChange,
    /// The account.
    pub user_id: Uuid,
    /// The tenant.
    pub tenant_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// A guardian link was made or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardianLinkEvent {
    /// Whether the link now exists.
    pub linked: bool,
    /// The guardian.
    pub guardian_id: Uuid,
    /// The supervised user.
    pub user_id: Uuid,
    /// The tenant of the link.
    pub tenant_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// What happened to a tenant or a school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrganisationChange {
    /// It was created.
    Created,
    /// It was renamed.
    Renamed,
    /// It was deleted (with everything that belonged to it).
    Deleted,
}

/// A change of a tenant, or of a school when `school_id` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganisationEvent {
    /// What happened.
    pub change: OrganisationChange,
    /// The tenant (the school's tenant for a school).
    pub tenant_id: Uuid,
    /// The school, when the change is a school's.
    pub school_id: Option<Uuid>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl Event {
    /// An [`Event::Account`].
    pub fn account(change: AccountChange, user_id: Uuid, now: DateTime<Utc>) -> Self {
        Self::Account(AccountEvent {
            change,
            user_id,
            occurred_at: now,
        })
    }

    /// An [`Event::Membership`].
    pub fn membership(change: MembershipChange, user_id: Uuid, tenant_id: Uuid, now: DateTime<Utc>) -> Self {
        Self::Membership(MembershipEvent {
            change,
            user_id,
            tenant_id,
            occurred_at: now,
        })
    }

    /// An [`Event::GuardianLink`].
    pub fn guardian_link(
        linked: bool,
        guardian_id: Uuid,
        user_id: Uuid,
        tenant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Self {
        Self::GuardianLink(GuardianLinkEvent {
            linked,
            guardian_id,
            user_id,
            tenant_id,
            occurred_at: now,
        })
    }

    /// An [`Event::Organisation`] of a tenant, or of one of its schools.
    pub fn organisation(
        change: OrganisationChange,
        tenant_id: Uuid,
        school_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::Organisation(OrganisationEvent {
            change,
            tenant_id,
            school_id,
            occurred_at: now,
        })
    }
}

/// Everything that is announced (each one is a row of the event log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// A session changed.
    Session(SessionEvent),
    /// A guardian is to be told of an early unlock.
    Unlock(UnlockNotification),
    /// The merged lock state of a user changed.
    LockState(LockStateEvent),
    /// Webhook deliveries of a tenant were queued outside a notification
    /// (a ping, a redelivery, an endpoint enabled): every instance's
    /// delivery looks for what is due.
    WebhookQueued(WebhookQueuedEvent),
    /// Session settings changed at this level: every instance drops its
    /// cached settings for it and for everything beneath it.
    SettingsChanged(SettingsScope),
    /// A login session changed.
    LoginSession(LoginSessionEvent),
    /// An account changed.
    Account(AccountEvent),
    /// A membership changed.
    Membership(MembershipEvent),
    /// A guardian link was made or removed.
    GuardianLink(GuardianLinkEvent),
    /// A tenant or a school changed.
    Organisation(OrganisationEvent),
}

/// An event as read from the log: its id is its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The event's id in the log.
    pub id: i64,
    /// The event.
    pub event: Event,
}

impl Logged {
    /// The cursor a client resumes from (`eventId`, `after`): opaque to it.
    pub fn cursor(&self) -> String {
        encode_cursor(self.id)
    }
}

/// The opaque text of the cursor at log id `id`.
pub(crate) fn encode_cursor(id: i64) -> String {
    format!("ev{id}")
}

/// The log id a cursor of [`encode_cursor`] names; anything else is
/// `BAD_USER_INPUT` on `after`.
pub(crate) fn decode_cursor(cursor: &str) -> AppResult<i64> {
    cursor
        .strip_prefix("ev")
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i64>().ok())
        .ok_or_else(|| AppError::bad_input("after", "is not an `eventId` returned by this API"))
}

/// Delivers the event log to this instance's subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sender: broadcast::Sender<Arc<Logged>>,
    /// Where the log is read (on SQLite a pool apart from the writer's).
    reader: DatabaseConnection,
    /// Wakes the delivery task.
    wake: Arc<Notify>,
    /// The id of the last event delivered (observed and broadcast).
    delivered: watch::Sender<i64>,
    /// Called with each event before it is broadcast.
    observers: Observers,
    /// Whether this instance has seen every event committed so far.
    trust: Arc<Trust>,
    retention_days: i64,
    /// Subscriptions in place (see [`EventBus::subscriber_count`]).
    listening: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EventBus {
    /// Starts delivering the log of `db` (read through `reader`) from its
    /// current end: what a restarted instance missed is for its subscribers
    /// to replay with `after`. On PostgreSQL it is listening for other
    /// instances' wake-ups when this returns.
    pub async fn start(
        db: &DatabaseConnection,
        reader: DatabaseConnection,
        settings: &EventLogSettings,
    ) -> AppResult<Self> {
        let (sender, _) = broadcast::channel(CAPACITY);
        let wake = Arc::new(Notify::new());
        let trust = Arc::new(Trust::default());
        let mut tasks = Vec::new();
        // Listening before the start is read: whatever commits after the
        // read wakes delivery.
        if db.get_database_backend() == DatabaseBackend::Postgres {
            let pool = db.get_postgres_connection_pool().clone();
            let listener = connect_listener(&pool).await.map_err(AppError::internal)?;
            tasks.push(tokio::spawn(listen(listener, pool, wake.clone(), trust.clone())));
        }
        let start = event_log::last_id(&reader).await?.unwrap_or(0);
        let (delivered, _) = watch::channel(start);
        let observers = Observers::default();
        // And once at start, for what committed between the two.
        wake.notify_one();
        let poll =
            (settings.poll_interval_secs > 0).then(|| Duration::from_secs(settings.poll_interval_secs));
        let delivery = Delivery {
            reader: reader.clone(),
            sender: sender.clone(),
            delivered: delivered.clone(),
            observers: observers.clone(),
            trust: trust.clone(),
        };
        tasks.push(tokio::spawn(delivery.run(start, wake.clone(), poll)));
        Ok(Self {
            inner: Arc::new(Inner {
                sender,
                reader,
                wake,
                delivered,
                observers,
                trust,
                retention_days: settings.retention_days,
                listening: Arc::default(),
                tasks,
            }),
        })
    }

    /// Calls `observer` with every event this instance delivers, before
    /// subscribers receive it and before the write that caused it (on this
    /// instance) returns. For caches: it must be quick and must not block.
    pub(crate) fn observe(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.inner
            .observers
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(observer));
    }

    /// Waits (at most `patience`) until this instance has delivered the
    /// event with id `id`: then its observers have seen it and its
    /// subscribers have it. Whether it was.
    pub async fn delivered_through(&self, id: i64, patience: Duration) -> bool {
        let mut delivered = self.inner.delivered.subscribe();
        tokio::time::timeout(patience, delivered.wait_for(|position| *position >= id))
            .await
            .is_ok_and(|reached| reached.is_ok())
    }

    /// Whether this instance has delivered everything committed so far, as
    /// far as it can tell: false from the moment its connection for other
    /// instances' wake-ups is lost until it has reconnected and caught up
    /// from the log. What is cached from events is only trusted meanwhile.
    pub(crate) fn is_current(&self) -> bool {
        self.inner.trust.is_current()
    }

    /// Changes whenever the event connection was lost: what was cached
    /// from events under another value may have missed some.
    pub(crate) fn trust_epoch(&self) -> u64 {
        self.inner.trust.epoch.load(Ordering::SeqCst)
    }

    /// How many subscriptions are in place on this instance right now: one
    /// per feed of its own, one per subscriber of a shared one (tests wait
    /// for a subscription to be in place before triggering its events).
    pub fn subscriber_count(&self) -> usize {
        self.inner.listening.load(Ordering::SeqCst)
    }

    /// Counts one subscription in place for as long as it is held.
    pub(crate) fn listening(&self) -> Listening {
        self.inner.listening.fetch_add(1, Ordering::SeqCst);
        Listening(self.inner.listening.clone())
    }

    /// The id of the last event this instance delivered.
    pub(crate) fn delivered(&self) -> i64 {
        *self.inner.delivered.borrow()
    }

    /// Wakes this instance's delivery after a commit that appended events
    /// (the other instances were woken by the `NOTIFY` of the transaction).
    /// Only the unit of work calls this.
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The events after `after` (replayed from the log, then live), or
    /// from now when `after` is `None`. `CURSOR_EXPIRED` when retention
    /// has already deleted some of the events after `after`.
    /// What a replay reads is narrowed by `only` (what the subscription
    /// could deliver at all); live events all pass.
    pub(crate) async fn feed(&self, after: Option<i64>, only: LogFilter) -> AppResult<Feed> {
        // From now: past what is committed already. Read before subscribing,
        // so that nothing committed after the subscription is skipped.
        let end = match after {
            None => event_log::last_id(&self.inner.reader).await?.unwrap_or(0),
            Some(_) => 0,
        };
        // Then subscribe: whatever is delivered from here on is either in
        // the replay or in the receiver (or both; ids decide).
        let receiver = self.inner.sender.subscribe();
        let (last, replaying) = match after {
            Some(cursor) => {
                self.ensure_retained(cursor).await?;
                // A cursor past the end was never handed out: accepting it
                // would silently skip what comes before it.
                let end = event_log::last_id(&self.inner.reader).await?.unwrap_or(0);
                let swept = event_log::swept_through(&self.inner.reader).await?;
                if cursor > end.max(swept).max(self.delivered()) {
                    return Err(AppError::bad_input(
                        "after",
                        "is not an `eventId` returned by this API",
                    ));
                }
                (cursor, true)
            }
            // What was broadcast before the receiver existed is not in it;
            // what is broadcast after has a higher id than this.
            None => (end.max(self.delivered()), false),
        };
        Ok(Feed {
            listening: Some(self.listening()),
            bus: self.clone(),
            receiver,
            last,
            replaying,
            only,
            pending: VecDeque::new(),
        })
    }

    async fn ensure_retained(&self, cursor: i64) -> AppResult<()> {
        if cursor < event_log::swept_through(&self.inner.reader).await? {
            return Err(AppError::CursorExpired {
                retention_days: self.inner.retention_days,
            });
        }
        Ok(())
    }

    /// A bus with no database and no delivery task: unit tests of
    /// receivers [`inject`](Self::inject) what it would have delivered.
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self {
            inner: Arc::new(Inner {
                sender,
                reader: DatabaseConnection::default(),
                wake: Arc::new(Notify::new()),
                delivered: watch::channel(0).0,
                observers: Observers::default(),
                trust: Arc::new(Trust::default()),
                retention_days: 7,
                listening: Arc::default(),
                tasks: Vec::new(),
            }),
        }
    }

    /// The event connection drops, as the listener sees it (unit tests).
    #[cfg(test)]
    pub(crate) fn lose_connection(&self) {
        self.inner.trust.lost();
    }

    /// The event connection is back, and delivery has read the log to its
    /// end (unit tests).
    #[cfg(test)]
    pub(crate) fn reconnect_and_catch_up(&self) {
        self.inner.trust.lost();
        let epoch = self.inner.trust.epoch.load(Ordering::SeqCst);
        self.inner.trust.caught_up.store(epoch, Ordering::SeqCst);
    }

    /// Sends `logged` to this instance's receivers as if delivered.
    #[cfg(test)]
    pub(crate) fn inject(&self, logged: Logged) {
        self.inner.observers.notify(&logged.event);
        let _receivers = self.inner.sender.send(Arc::new(logged));
    }
}

/// Queues the wake-up of every instance serving from the database of
/// `txn`: PostgreSQL delivers a `NOTIFY` only when its transaction commits,
/// so nothing is left to do (or to fail) after the commit. Nothing on
/// SQLite, whose single instance polls for other processes' writes.
pub(crate) async fn wake_instances_on_commit(txn: &impl ConnectionTrait) -> AppResult<()> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, '')",
            [CHANNEL.into()],
        ))
        .await?;
    }
    Ok(())
}

/// What observes every delivered event (see [`EventBus::observe`]).
#[derive(Clone, Default)]
struct Observers(Arc<std::sync::RwLock<Vec<Observer>>>);

/// One observer of delivered events.
type Observer = Box<dyn Fn(&Event) + Send + Sync>;

impl std::fmt::Debug for Observers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Observers")
    }
}

impl Observers {
    fn notify(&self, event: &Event) {
        for observer in self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            observer(event);
        }
    }
}

/// One subscriber's view of the log: every event after its position,
/// once, in order.
#[derive(Debug)]
pub(crate) struct Feed {
    /// Counts the feed as a subscription, unless it serves many.
    listening: Option<Listening>,
    bus: EventBus,
    receiver: broadcast::Receiver<Arc<Logged>>,
    /// The id of the last event handed out (or the cursor resumed from).
    last: i64,
    /// Reading the log rather than the broadcast.
    replaying: bool,
    /// What a replay reads.
    only: LogFilter,
    pending: VecDeque<Arc<Logged>>,
}

impl Feed {
    /// The feed of a shared subscription: its subscribers count
    /// themselves, not the feed.
    pub fn shared(mut self) -> Self {
        self.listening = None;
        self
    }

    /// The next event if it is already here (delivered to this feed, not
    /// to be read from the log): never waits.
    pub fn try_next(&mut self) -> Option<Arc<Logged>> {
        if let Some(logged) = self.pending.pop_front() {
            self.last = logged.id;
            return Some(logged);
        }
        if self.replaying {
            return None;
        }
        loop {
            match self.receiver.try_recv() {
                Ok(logged) if logged.id <= self.last => {}
                Ok(logged) => {
                    self.last = logged.id;
                    return Some(logged);
                }
                Err(_) => return None,
            }
        }
    }

    /// The next event; `None` once the bus is gone.
    pub async fn next(&mut self) -> AppResult<Option<Arc<Logged>>> {
        loop {
            if let Some(logged) = self.pending.pop_front() {
                self.last = logged.id;
                return Ok(Some(logged));
            }
            if self.replaying {
                let page =
                    event_log::read_rows_after(&self.bus.inner.reader, self.last, PAGE, &self.only).await?;
                // Read, then check: the horizon only grows, so if it is
                // still at or below `last` nothing above it was gone.
                self.bus.ensure_retained(self.last).await?;
                let Some(&(page_end, _)) = page.last() else {
                    self.replaying = false;
                    continue;
                };
                self.pending.extend(
                    page.into_iter()
                        .filter_map(|(id, event)| event.map(|event| Arc::new(Logged { id, event }))),
                );
                if self.pending.is_empty() {
                    // Only rows this version cannot read: step over them.
                    self.last = page_end;
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(logged) if logged.id <= self.last => {}
                Ok(logged) => {
                    self.last = logged.id;
                    return Ok(Some(logged));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(
                        missed,
                        "a subscriber fell behind the broadcast; replaying from the log"
                    );
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}

/// One subscription in place, counted until dropped.
#[derive(Debug)]
pub(crate) struct Listening(Arc<AtomicUsize>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether an instance has seen every event: `epoch` moves by one when the
/// event connection is lost (odd: disconnected) and by one again once it is
/// back; delivery records the epoch of each catch-up it completes.
#[derive(Debug, Default)]
struct Trust {
    epoch: AtomicU64,
    caught_up: AtomicU64,
}

impl Trust {
    fn is_current(&self) -> bool {
        let epoch = self.epoch.load(Ordering::SeqCst);
        epoch.is_multiple_of(2) && self.caught_up.load(Ordering::SeqCst) == epoch
    }

    fn lost(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// The delivery task's handles.
struct Delivery {
    reader: DatabaseConnection,
    sender: broadcast::Sender<Arc<Logged>>,
    delivered: watch::Sender<i64>,
    observers: Observers,
    trust: Arc<Trust>,
}

impl Delivery {
    /// Reads the log from `start` whenever woken (or every `poll`) and
    /// delivers each event once, in order.
    async fn run(self, start: i64, wake: Arc<Notify>, poll: Option<Duration>) {
        let mut position = start;
        loop {
            match poll {
                Some(poll) => {
                    let _woken_or_due = tokio::time::timeout(poll, wake.notified()).await;
                }
                None => wake.notified().await,
            }
            // Taken before reading: a catch-up only vouches for the epoch it began in.
            let epoch = self.trust.epoch.load(Ordering::SeqCst);
            loop {
                match event_log::read_rows_after(&self.reader, position, PAGE, &LogFilter::default()).await {
                    Ok(page) if page.is_empty() => {
                        self.trust.caught_up.store(epoch, Ordering::SeqCst);
                        break;
                    }
                    Ok(page) => {
                        for (id, event) in page {
                            position = id;
                            // A row this build cannot read (written by a newer
                            // one) is skipped, not retried forever.
                            if let Some(event) = event {
                                self.observers.notify(&event);
                                // No receiver is not an error: nobody is subscribed.
                                let _receivers = self.sender.send(Arc::new(Logged { id, event }));
                            }
                            self.delivered.send_replace(id);
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = ?error, "could not read the event log; retrying");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
            }
        }
    }
}

async fn connect_listener(pool: &sea_orm::sqlx::PgPool) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Turns other instances' `NOTIFY`s into wake-ups. `try_recv` answers
/// `None` when the connection was lost and has been re-established (and
/// listens again): the wake-ups sent meanwhile are gone, so delivery
/// catches up from the log. When it fails instead, a new listener is
/// connected first, and only then is delivery woken to catch up, so that
/// nothing committed between the catch-up and the new `LISTEN` is missed.
async fn listen(mut listener: PgListener, pool: sea_orm::sqlx::PgPool, wake: Arc<Notify>, trust: Arc<Trust>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_wake_up)) => {}
            Ok(None) => {
                // Lost and already listening again: untrusted until caught up.
                trust.lost();
                trust.lost();
                tracing::warn!("the event listener lost its connection; catching up from the log");
            }
            Err(error) => {
                trust.lost();
                tracing::warn!(%error, "the event listener failed; connecting a new one");
                listener = loop {
                    tokio::time::sleep(RETRY_AFTER).await;
                    match connect_listener(&pool).await {
                        Ok(listener) => break listener,
                        Err(error) => {
                            tracing::warn!(%error, "could not connect the event listener; retrying")
                        }
                    }
                };
                trust.lost();
            }
        }
        wake.notify_one();
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
            session: None,
        })
    }

    #[test]
    fn an_instance_trusts_what_it_caught_up_with_only_until_the_connection_drops() {
        let trust = Trust::default();
        assert!(
            trust.is_current(),
            "a bus starts caught up from the end of the log"
        );
        trust.lost();
        assert!(!trust.is_current(), "disconnected");
        trust.lost();
        assert!(!trust.is_current(), "reconnected, not yet caught up");
        // A catch-up that began before the reconnection vouches for nothing.
        trust.caught_up.store(1, Ordering::SeqCst);
        assert!(!trust.is_current());
        trust.caught_up.store(2, Ordering::SeqCst);
        assert!(trust.is_current());
    }

    #[test]
    fn events_survive_the_stored_format() {
        let stored = event();
        let json = serde_json::to_string(&stored).unwrap_or_default();
        assert!(json.contains("\"type\":\"SESSION\""), "{json}");
        let back: Option<Event> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(stored));
    }

    #[test]
    fn cursors_round_trip_and_nothing_else_decodes() {
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        for forged in [
            "",
            "ev",
            "42",
            "ev-1",
            "ev4\u{0}2",
            "ev99999999999999999999",
            "ev 1",
        ] {
            assert_eq!(
                decode_cursor(forged).err().map(|error| error.code()),
                Some("BAD_USER_INPUT"),
                "{forged:?}"
            );
        }
    }
}
