//! What authentication needs, kept in memory: login sessions, accounts,
//! memberships and guardian links, loaded on first use and kept right by
//! the events of the durable log (every change to any of them is one).
//!
//! Each instance observes every event it delivers, before any subscriber
//! sees it, and drops what the event changed; so a revocation made on
//! another instance takes effect here as soon as this instance has
//! delivered its event. While the event connection is lost the cache is
//! bypassed (every lookup reads the database) until delivery has caught up;
//! then it starts empty.
//!
//! It also records activity: `last_seen_at` moves in memory on every user
//! action and is written off the request path, at most once per login
//! session per `auth.last_seen_resolution_secs`.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use entity::{guardian_link, session_log, tenant_membership, user};
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::AppResult;
use crate::events::{AccountChange, Event, EventBus, MembershipChange, OrganisationChange};

/// A login session as authentication sees it, with its latest activity.
#[derive(Debug)]
pub(crate) struct CachedLoginSession {
    /// The row as last read (its `last_seen_at` may be older than `activity`).
    pub row: session_log::Model,
    activity: Mutex<Activity>,
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    /// The latest user action seen by this instance (or the stored value).
    last_active: DateTime<Utc>,
    /// What this instance last wrote (or read) as `last_seen_at`.
    persisted: DateTime<Utc>,
}

impl CachedLoginSession {
    fn new(row: session_log::Model) -> Self {
        let activity = Activity {
            last_active: row.last_seen_at,
            persisted: row.last_seen_at,
        };
        Self {
            row,
            activity: Mutex::new(activity),
        }
    }

    /// The row with `last_seen_at` at the latest activity known here.
    pub(crate) fn current(&self) -> session_log::Model {
        let mut row = self.row.clone();
        row.last_seen_at = self.activity().last_active;
        row
    }

    fn activity(&self) -> Activity {
        *self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The identity cache of one instance (cheap to clone).
#[derive(Debug, Clone)]
pub struct IdentityCache {
    inner: Arc<Inner>,
}

struct Inner {
    sessions: Cache<Uuid, Arc<CachedLoginSession>>,
    accounts: Cache<Uuid, Arc<user::Model>>,
    memberships: Cache<Uuid, Arc<Vec<tenant_membership::Model>>>,
    /// The users a guardian supervises in a tenant, by (tenant, guardian).
    supervised: Cache<(Uuid, Uuid), Arc<HashSet<Uuid>>>,
    /// Counts invalidations; held while an invalidation runs and while a
    /// loaded value is inserted, so that nothing read before an
    /// invalidation is inserted after it.
    invalidations: Mutex<u64>,
    /// The event bus's trust epoch the contents were loaded under.
    epoch: AtomicU64,
    bus: EventBus,
    /// Per user: moved whenever something their identity rests on changed.
    signals: Mutex<HashMap<Uuid, watch::Sender<u64>>>,
    /// Moved when something everyone's identity may rest on changed.
    everyone: watch::Sender<u64>,
    writes: Arc<ActivityWrites>,
    flusher: JoinHandle<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("IdentityCache")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flusher.abort();
    }
}

/// What tells a connection to look at its identity again.
#[derive(Debug, Clone)]
pub(crate) struct IdentitySignal {
    user: watch::Receiver<u64>,
    everyone: watch::Receiver<u64>,
}

impl IdentitySignal {
    /// Resolves when something the identity rests on may have changed
    /// since the last [`mark_seen`](Self::mark_seen).
    pub(crate) async fn changed(&mut self) {
        tokio::select! {
            changed = self.user.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            changed = self.everyone.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// The version of what the identity rests on (user's and everyone's).
    pub(crate) fn version(&self) -> (u64, u64) {
        (*self.user.borrow(), *self.everyone.borrow())
    }

    /// Marks the current version seen, and returns it.
    pub(crate) fn mark_seen(&mut self) -> (u64, u64) {
        (*self.user.borrow_and_update(), *self.everyone.borrow_and_update())
    }
}

impl IdentityCache {
    /// An empty cache of `entries` per kind, kept right by what `bus`
    /// delivers, writing activity to `db`.
    pub fn new(bus: &EventBus, db: DatabaseConnection, entries: u64) -> Self {
        let writes = Arc::new(ActivityWrites::default());
        let flusher = tokio::spawn(writes.clone().flush(db));
        // An entry pushed out for room may hold activity not yet written:
        // it is queued, or the reloaded row would bring the idle deadline
        // forward.
        let unwritten = writes.clone();
        let sessions = Cache::builder()
            .max_capacity(entries)
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(
                move |id: Arc<Uuid>, entry: Arc<CachedLoginSession>, cause: RemovalCause| {
                    if cause.was_evicted() {
                        let activity = entry.activity();
                        if activity.last_active > activity.persisted {
                            unwritten.queue(*id, activity.last_active);
                        }
                    }
                },
            )
            .build();
        let cache = Self {
            inner: Arc::new(Inner {
                sessions,
                accounts: least_recently_used(entries),
                memberships: least_recently_used(entries),
                supervised: least_recently_used(entries),
                invalidations: Mutex::new(0),
                epoch: AtomicU64::new(bus.trust_epoch()),
                bus: bus.clone(),
                signals: Mutex::default(),
                everyone: watch::Sender::new(0),
                writes,
                flusher,
            }),
        };
        // The observer holds the parts it needs, not the bus: no cycle.
        let observer = Arc::downgrade(&cache.inner);
        bus.observe(move |event| {
            if let Some(inner) = observer.upgrade() {
                inner.on_event(event, Signal::Watchers);
            }
        });
        cache
    }

    /// The login session `id`, as of the events delivered so far.
    pub(crate) async fn login_session(
        &self,
        db: &DatabaseConnection,
        id: Uuid,
    ) -> AppResult<Option<Arc<CachedLoginSession>>> {
        self.inner
            .get_or_load(&self.inner.sessions, id, move || async move {
                Ok(session_log::Entity::find_by_id(id)
                    .one(db)
                    .await?
                    .map(|row| Arc::new(CachedLoginSession::new(row))))
            })
            .await
    }

    /// Reads the login session `id` from the database whatever is cached
    /// (another instance may have seen activity this one has not), and
    /// caches what it read.
    pub(crate) async fn reload_login_session(
        &self,
        db: &DatabaseConnection,
        id: Uuid,
    ) -> AppResult<Option<Arc<CachedLoginSession>>> {
        self.inner.sessions.invalidate(&id);
        self.login_session(db, id).await
    }

    /// The account `id`.
    pub(crate) async fn account(
        &self,
        db: &DatabaseConnection,
        id: Uuid,
    ) -> AppResult<Option<Arc<user::Model>>> {
        self.inner
            .get_or_load(&self.inner.accounts, id, move || async move {
                Ok(user::Entity::find_by_id(id).one(db).await?.map(Arc::new))
            })
            .await
    }

    /// Every membership of `user_id`.
    pub(crate) async fn memberships(
        &self,
        db: &DatabaseConnection,
        user_id: Uuid,
    ) -> AppResult<Arc<Vec<tenant_membership::Model>>> {
        self.inner
            .get_or_load(&self.inner.memberships, user_id, move || async move {
                Ok(Some(Arc::new(
                    tenant_membership::Entity::find()
                        .filter(tenant_membership::Column::UserId.eq(user_id))
                        .all(db)
                        .await?,
                )))
            })
            .await
            .map(Option::unwrap_or_default)
    }

    /// The users `guardian_id` supervises in `tenant_id`.
    pub(crate) async fn supervised(
        &self,
        db: &DatabaseConnection,
        tenant_id: Uuid,
        guardian_id: Uuid,
    ) -> AppResult<Arc<HashSet<Uuid>>> {
        self.inner
            .get_or_load(
                &self.inner.supervised,
                (tenant_id, guardian_id),
                move || async move {
                    let users: Vec<Uuid> = guardian_link::Entity::find()
                        .select_only()
                        .column(guardian_link::Column::UserId)
                        .filter(guardian_link::Column::TenantId.eq(tenant_id))
                        .filter(guardian_link::Column::GuardianId.eq(guardian_id))
                        .into_tuple()
                        .all(db)
                        .await?;
                    Ok(Some(Arc::new(users.into_iter().collect())))
                },
            )
            .await
            .map(Option::unwrap_or_default)
    }

    /// What moves when the identity of `user_id` may have changed.
    pub(crate) fn signal(&self, user_id: Uuid) -> IdentitySignal {
        let mut signals = self.inner.signals.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the users nobody watches any more, now and then.
        if signals.len() >= 1024 && signals.len().is_power_of_two() {
            signals.retain(|_, sender| sender.receiver_count() > 0);
        }
        let user = signals
            .entry(user_id)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe();
        IdentitySignal {
            user,
            everyone: self.inner.everyone.subscribe(),
        }
    }

    /// Records a user action in `session` at `now`: its idle deadline moves
    /// at once, and `last_seen_at` is written (off the request path) when
    /// the stored value is `resolution_secs` old.
    pub(crate) fn record_activity(
        &self,
        session: &CachedLoginSession,
        now: DateTime<Utc>,
        resolution_secs: i64,
    ) {
        let write = {
            let mut activity = session.activity.lock().unwrap_or_else(PoisonError::into_inner);
            activity.last_active = activity.last_active.max(now);
            let due = now - activity.persisted >= Duration::seconds(resolution_secs);
            if due {
                activity.persisted = now;
            }
            due
        };
        if write {
            self.inner.writes.queue(session.row.id, now);
        }
    }

    /// Drops what the events of a unit of work of this instance changed,
    /// as soon as it has committed (delivery drops it again, harmlessly):
    /// requests see the change at once. Connections are told at delivery,
    /// so that the event which ended a login session reaches its
    /// subscribers before the end does.
    pub(crate) fn apply_committed(&self, events: &[Event]) {
        for event in events {
            self.inner.on_event(event, Signal::Nobody);
        }
    }

    /// Waits until every `last_seen_at` queued so far is written (tests,
    /// and shutdown).
    pub async fn settle_activity(&self) {
        self.inner.writes.settled().await;
    }
}

impl Inner {
    /// The cached value of `key`, or what `load` reads (cached when no
    /// event may have changed it meanwhile). The load is made, and boxed,
    /// only on a miss: every connection holds a lookup in its state, so a
    /// database query inline would make each idle subscriber kilobytes
    /// bigger.
    async fn get_or_load<K, V, Load>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        load: impl FnOnce() -> Load,
    ) -> AppResult<Option<V>>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Load: Future<Output = AppResult<Option<V>>>,
    {
        let epoch = self.bus.trust_epoch();
        if self.epoch.swap(epoch, Ordering::SeqCst) != epoch {
            // Loaded while events may have been missed: start again.
            self.invalidate_everything();
        }
        let trusted = self.bus.is_current();
        if trusted && let Some(value) = cache.get(&key) {
            return Ok(Some(value));
        }
        let before = *self.invalidations.lock().unwrap_or_else(PoisonError::into_inner);
        let loaded = Box::pin(load()).await?;
        if let Some(value) = &loaded {
            let invalidations = self.invalidations.lock().unwrap_or_else(PoisonError::into_inner);
            if trusted && *invalidations == before && self.bus.trust_epoch() == epoch && self.bus.is_current()
            {
                cache.insert(key, value.clone());
            }
        }
        Ok(loaded)
    }

    fn on_event(&self, event: &Event, signal: Signal) {
        let watchers = signal == Signal::Watchers;
        let mut invalidations = self.invalidations.lock().unwrap_or_else(PoisonError::into_inner);
        *invalidations += 1;
        match event {
            Event::LoginSession(change) => {
                self.keep_activity(change.login_session_id);
                self.sessions.invalidate(&change.login_session_id);
                if watchers {
                    self.signal(change.user_id);
                }
            }
            Event::Account(change) => {
                self.accounts.invalidate(&change.user_id);
                self.memberships.invalidate(&change.user_id);
                if change.change == AccountChange::Deleted {
                    // Its links went with it.
                    self.supervised.invalidate_all();
                }
                if watchers {
                    self.signal(change.user_id);
                }
            }
            Event::Membership(change) => {
                self.memberships.invalidate(&change.user_id);
                // A change of role from guardian removes the links in which
                // they guard, without an event of their own.
                self.supervised.invalidate(&(change.tenant_id, change.user_id));
                if change.change == MembershipChange::Removed {
                    self.supervised.invalidate_all();
                }
                if watchers {
                    self.signal(change.user_id);
                }
            }
            Event::GuardianLink(link) => {
                self.supervised.invalidate(&(link.tenant_id, link.guardian_id));
            }
            Event::Organisation(change) if change.change == OrganisationChange::Deleted => {
                // What went with a tenant or a school (memberships, links,
                // login sessions' contexts) is not announced row by row.
                self.invalidate_everything();
                if watchers {
                    self.everyone.send_modify(|version| *version += 1);
                }
            }
            // Timeouts may have changed: every deadline is to be looked at again.
            Event::SettingsChanged(_) => {
                if watchers {
                    self.everyone.send_modify(|version| *version += 1);
                }
            }
            Event::Organisation(_)
            | Event::Session(_)
            | Event::Unlock(_)
            | Event::LockState(_)
            | Event::WebhookQueued(_) => {}
        }
    }

    /// Queues the write of activity seen here but not yet written, before
    /// the entry that holds it is dropped: otherwise the reloaded row would
    /// bring the idle deadline forward.
    fn keep_activity(&self, login_session_id: Uuid) {
        if let Some(entry) = self.sessions.get(&login_session_id) {
            let activity = entry.activity();
            if activity.last_active > activity.persisted {
                self.writes.queue(login_session_id, activity.last_active);
            }
        }
    }

    fn invalidate_everything(&self) {
        self.sessions.invalidate_all();
        self.accounts.invalidate_all();
        self.memberships.invalidate_all();
        self.supervised.invalidate_all();
    }

    fn signal(&self, user_id: Uuid) {
        let signals = self.signals.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = signals.get(&user_id) {
            sender.send_modify(|version| *version += 1);
        }
    }
}

/// A cache of at most `entries`, the least recently used going first.
fn least_recently_used<K, V>(entries: u64) -> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(entries)
        .eviction_policy(EvictionPolicy::lru())
        .build()
}

/// Whether dropping entries also tells the connections watching them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// At delivery: connections look at their identity again.
    Watchers,
    /// At commit: only the entries go.
    Nobody,
}

/// The `last_seen_at` writes waiting for the flusher: at most one per
/// login session (the latest), however many actions queued it.
#[derive(Debug, Default)]
struct ActivityWrites {
    pending: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    queued: AtomicU64,
    written: watch::Sender<u64>,
    wake: Notify,
}

impl ActivityWrites {
    fn queue(&self, login_session_id: Uuid, at: DateTime<Utc>) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = pending.entry(login_session_id).or_insert(at);
            *entry = (*entry).max(at);
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        self.wake.notify_one();
    }

    async fn settled(&self) {
        let queued = self.queued.load(Ordering::SeqCst);
        let mut written = self.written.subscribe();
        let _closed = written.wait_for(|written| *written >= queued).await;
    }

    async fn flush(self: Arc<Self>, db: DatabaseConnection) {
        loop {
            self.wake.notified().await;
            let (batch, through) = {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                (std::mem::take(&mut *pending), self.queued.load(Ordering::SeqCst))
            };
            for (login_session_id, at) in batch {
                // Never backwards, and never on an ended login session's behalf.
                let written = session_log::Entity::update_many()
                    .col_expr(session_log::Column::LastSeenAt, Expr::value(at))
                    .filter(session_log::Column::Id.eq(login_session_id))
                    .filter(session_log::Column::LastSeenAt.lt(at))
                    .filter(session_log::Column::LogoutAt.is_null())
                    .exec(&db)
                    .await;
                if let Err(error) = written {
                    tracing::warn!(%login_session_id, error = ?error, "could not record activity");
                }
            }
            self.written.send_replace(through);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, Database};

    use super::*;
    use crate::events::Logged;

    /// An open login session `id` of `user_id`, logged in (and last seen) at `login`.
    async fn insert_login_session(db: &DatabaseConnection, user_id: Uuid, id: Uuid, login: DateTime<Utc>) {
        session_log::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            tenant_id: Set(None),
            login_at: Set(login),
            logout_at: Set(None),
            last_seen_at: Set(login),
            user_agent: Set(None),
            ip_address: Set(None),
            device_info: Set(None),
            end_reason: Set(None),
            expiry_warned_for: Set(None),
            created_at: Set(login),
            updated_at: Set(login),
        }
        .insert(db)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    }

    async fn database_with_one_account() -> (DatabaseConnection, Uuid) {
        let db = Database::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Migrator::up(&db, None)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let id = Uuid::now_v7();
        let now = Utc::now();
        user::ActiveModel {
            id: Set(id),
            email: Set("someone@example.test".to_owned()),
            name: Set(Some("Before".to_owned())),
            password_hash: Set(String::new()),
            is_super_admin: Set(false),
            max_concurrent_sessions: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&db)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        (db, id)
    }

    /// Renames the account behind the cache's back (no event).
    async fn rename_silently(db: &DatabaseConnection, id: Uuid, name: &str) {
        user::Entity::update_many()
            .col_expr(user::Column::Name, Expr::value(name))
            .filter(user::Column::Id.eq(id))
            .exec(db)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }

    async fn name_of(cache: &IdentityCache, db: &DatabaseConnection, id: Uuid) -> Option<String> {
        cache
            .account(db, id)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .and_then(|account| account.name.clone())
    }

    #[tokio::test]
    async fn an_account_is_read_once_and_dropped_by_its_event() {
        let (db, id) = database_with_one_account().await;
        let bus = EventBus::detached();
        let cache = IdentityCache::new(&bus, db.clone(), 100);
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("Before"));
        rename_silently(&db, id, "After").await;
        assert_eq!(
            name_of(&cache, &db, id).await.as_deref(),
            Some("Before"),
            "served from memory"
        );
        let mut signal = cache.signal(id);
        let before = signal.mark_seen();
        bus.inject(Logged {
            id: 1,
            event: Event::account(AccountChange::Updated, id, Utc::now()),
        });
        assert_ne!(signal.version(), before, "its connections are told");
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("After"));
    }

    #[tokio::test]
    async fn activity_not_yet_written_survives_the_entry_being_dropped() {
        let (db, user_id) = database_with_one_account().await;
        let login = Utc::now() - Duration::minutes(5);
        let id = Uuid::now_v7();
        insert_login_session(&db, user_id, id, login).await;
        let bus = EventBus::detached();
        let cache = IdentityCache::new(&bus, db.clone(), 100);
        let entry = cache
            .login_session(&db, id)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("the login session"));
        let active = login + Duration::seconds(10);
        cache.record_activity(&entry, active, 60);
        cache.settle_activity().await;
        let stored = |db: DatabaseConnection| async move {
            session_log::Entity::find_by_id(id)
                .one(&db)
                .await
                .ok()
                .flatten()
                .map(|row| row.last_seen_at)
        };
        assert_eq!(
            stored(db.clone()).await,
            Some(login),
            "within the resolution: not written"
        );
        bus.inject(Logged {
            id: 1,
            event: Event::LoginSession(crate::events::LoginSessionEvent {
                change: crate::events::LoginSessionChange::TenantSwitched,
                login_session_id: id,
                user_id,
                end_reason: None,
                expires_at: None,
                occurred_at: active,
            }),
        });
        cache.settle_activity().await;
        assert_eq!(
            stored(db.clone()).await,
            Some(active),
            "written as the entry went"
        );
        let reloaded = cache
            .login_session(&db, id)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .map(|entry| entry.current().last_seen_at);
        assert_eq!(reloaded, Some(active));
    }

    #[tokio::test]
    async fn activity_not_yet_written_survives_its_entry_being_pushed_out_for_room() {
        let (db, user_id) = database_with_one_account().await;
        let login = Utc::now() - Duration::minutes(5);
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        for id in [first, second] {
            insert_login_session(&db, user_id, id, login).await;
        }
        let bus = EventBus::detached();
        // Room for one login session.
        let cache = IdentityCache::new(&bus, db.clone(), 1);
        let load = async |id| {
            cache
                .login_session(&db, id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("the login session"))
        };
        let entry = load(first).await;
        let active = login + Duration::seconds(10);
        cache.record_activity(&entry, active, 60);
        drop(entry);
        load(second).await;
        cache.inner.sessions.run_pending_tasks();
        assert_eq!(cache.inner.sessions.entry_count(), 1, "the first was pushed out");
        cache.settle_activity().await;
        let stored = session_log::Entity::find_by_id(first)
            .one(&db)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
            .map(|row| row.last_seen_at);
        assert_eq!(stored, Some(active), "written as the entry went");
    }

    #[tokio::test]
    async fn a_unit_of_work_of_this_instance_applies_before_its_delivery() {
        let (db, id) = database_with_one_account().await;
        let bus = EventBus::detached();
        let cache = IdentityCache::new(&bus, db.clone(), 100);
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("Before"));
        rename_silently(&db, id, "Committed").await;
        // Delivery has not run (a detached bus never delivers).
        cache.apply_committed(&[Event::account(AccountChange::Updated, id, Utc::now())]);
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("Committed"));
    }

    #[tokio::test]
    async fn while_events_may_be_missed_the_database_answers_and_the_cache_starts_again() {
        let (db, id) = database_with_one_account().await;
        let bus = EventBus::detached();
        let cache = IdentityCache::new(&bus, db.clone(), 100);
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("Before"));
        bus.lose_connection();
        // A change this instance will never hear of.
        rename_silently(&db, id, "While away").await;
        assert_eq!(name_of(&cache, &db, id).await.as_deref(), Some("While away"));
        rename_silently(&db, id, "Still away").await;
        assert_eq!(
            name_of(&cache, &db, id).await.as_deref(),
            Some("Still away"),
            "nothing read while disconnected is kept"
        );
        bus.reconnect_and_catch_up();
        rename_silently(&db, id, "Back").await;
        assert_eq!(
            name_of(&cache, &db, id).await.as_deref(),
            Some("Back"),
            "what was cached before the loss is gone"
        );
        rename_silently(&db, id, "Unannounced").await;
        assert_eq!(
            name_of(&cache, &db, id).await.as_deref(),
            Some("Back"),
            "trusted again once caught up"
        );
    }
}
