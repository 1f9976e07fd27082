//! The per-instance cache of stored settings, as the settings document
//! describes it:
//!
//! - one entry per scope, keyed `SessionSettings:System`,
//!   `SessionSettings:District:{id}` and `SessionSettings:School:{id}`,
//!   holding that level's stored (nullable) values;
//! - a 5-minute **sliding** expiry, measured with the application's
//!   [`Clock`](crate::clock::Clock): an entry not read for 5 minutes is
//!   gone, and every read pushes its expiry back;
//! - explicit invalidation of a scope and of everything beneath it
//!   (a district drops its schools' entries; the system drops everything),
//!   done by the instance that made the change right after it committed and
//!   by every instance when the `SettingsChanged` event arrives (across
//!   PostgreSQL instances through LISTEN/NOTIFY).
//!
//! Loading a value races with invalidation: a reader may fetch a row just
//! before a change commits and store it just after the invalidation. Every
//! invalidation therefore bumps a generation, and a load only stores its
//! result when the generation did not move meanwhile.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use entity::{school, system_settings, tenant};
use sea_orm::{ConnectionTrait, EntityTrait};
use tokio::sync::watch;
use uuid::Uuid;

use super::resolution::Values;
use crate::clock::SharedClock;
use crate::config::SessionSecurityOptions;
use crate::error::{AppError, AppResult};
use crate::events::{Event, EventBus, SettingsScope};

/// How long an entry lives without being read.
pub const SLIDING_EXPIRY: Duration = Duration::minutes(5);

/// Above this many entries, inserting sweeps out the expired ones.
const SWEEP_ABOVE: usize = 4096;

/// The key of one cached scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// `SessionSettings:System`.
    System,
    /// `SessionSettings:District:{id}`.
    District(Uuid),
    /// `SessionSettings:School:{id}`.
    School(Uuid),
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => write!(f, "SessionSettings:System"),
            Self::District(id) => write!(f, "SessionSettings:District:{id}"),
            Self::School(id) => write!(f, "SessionSettings:School:{id}"),
        }
    }
}

/// The stored values of one scope (`CachedSessionSettings` of the settings
/// document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSessionSettings {
    /// The level's own values (`None` where it inherits).
    pub values: Values,
    /// For a school, its district.
    pub tenant_id: Option<Uuid>,
    /// When it was loaded.
    pub cached_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Entry {
    settings: Arc<CachedSessionSettings>,
    last_access: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<CacheKey, Entry>,
    generation: u64,
}

#[derive(Debug)]
struct Inner {
    clock: SharedClock,
    config: Values,
    entries: Mutex<Entries>,
    invalidations: watch::Sender<u64>,
}

/// The settings cache of one application instance, with the config-file
/// level it resolves against. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct SettingsCache {
    inner: Arc<Inner>,
}

impl SettingsCache {
    /// An empty cache on `clock`, resolving against the config-file level
    /// `options`.
    pub fn new(clock: SharedClock, options: &SessionSecurityOptions) -> Self {
        let (invalidations, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                clock,
                config: Values::of_config(options),
                entries: Mutex::new(Entries::default()),
                invalidations,
            }),
        }
    }

    /// An empty cache with the same clock and config-file level, shared with
    /// nobody: for reads inside a transaction that may still roll back, so
    /// that what they load never reaches the shared cache.
    pub(crate) fn detached(&self) -> Self {
        let (invalidations, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                clock: self.inner.clock.clone(),
                config: self.inner.config,
                entries: Mutex::new(Entries::default()),
                invalidations,
            }),
        }
    }

    /// Invalidates on every `SettingsChanged` event of `events` (from this
    /// instance and, on PostgreSQL, from every other one), from now on. The
    /// cache observes delivery: it has the change before the write that
    /// caused it (on this instance) answers. Call once.
    pub fn listen(&self, events: &EventBus) {
        let cache = Arc::downgrade(&self.inner);
        events.observe(move |event| {
            if let Event::SettingsChanged(scope) = event
                && let Some(inner) = cache.upgrade()
            {
                SettingsCache { inner }.invalidate(*scope);
            }
        });
    }

    /// The config-file level.
    pub fn config(&self) -> &Values {
        &self.inner.config
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.inner.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key` if present and not expired; reading it slides its
    /// expiry.
    pub fn get(&self, key: CacheKey) -> Option<Arc<CachedSessionSettings>> {
        let now = self.inner.clock.now();
        let mut entries = self.entries();
        let expired = match entries.map.get_mut(&key) {
            None => return None,
            Some(entry) if now - entry.last_access >= SLIDING_EXPIRY => true,
            Some(entry) => {
                entry.last_access = now;
                return Some(entry.settings.clone());
            }
        };
        if expired {
            entries.map.remove(&key);
        }
        None
    }

    /// Whether `key` has an unexpired entry (without sliding it).
    pub fn contains(&self, key: CacheKey) -> bool {
        let now = self.inner.clock.now();
        self.entries()
            .map
            .get(&key)
            .is_some_and(|entry| now - entry.last_access < SLIDING_EXPIRY)
    }

    /// The current generation (moves with every invalidation).
    fn generation(&self) -> u64 {
        self.entries().generation
    }

    /// Stores `values` under `key`, unless an invalidation happened since
    /// `generation` was read.
    fn insert(
        &self,
        key: CacheKey,
        generation: u64,
        values: Values,
        tenant_id: Option<Uuid>,
    ) -> Arc<CachedSessionSettings> {
        let now = self.inner.clock.now();
        let settings = Arc::new(CachedSessionSettings {
            values,
            tenant_id,
            cached_at: now,
        });
        let mut entries = self.entries();
        if entries.generation == generation {
            if entries.map.len() >= SWEEP_ABOVE {
                entries
                    .map
                    .retain(|_, entry| now - entry.last_access < SLIDING_EXPIRY);
            }
            entries.map.insert(
                key,
                Entry {
                    settings: settings.clone(),
                    last_access: now,
                },
            );
        }
        settings
    }

    /// Drops the entries of `scope` and of everything beneath it: the
    /// system drops every entry; a district, its own and its schools'; a
    /// school, its own. A user's override is not cached.
    pub fn invalidate(&self, scope: SettingsScope) {
        {
            let mut entries = self.entries();
            entries.generation += 1;
            match scope {
                SettingsScope::System => entries.map.clear(),
                SettingsScope::Tenant(id) => entries.map.retain(|key, entry| match key {
                    CacheKey::District(district) => *district != id,
                    CacheKey::School(_) => entry.settings.tenant_id != Some(id),
                    CacheKey::System => true,
                }),
                SettingsScope::School(id) => {
                    entries.map.remove(&CacheKey::School(id));
                }
                SettingsScope::User(_) => {}
            }
        }
        self.inner.invalidations.send_modify(|count| *count += 1);
    }

    /// Counts the invalidations so far (tests wait on it for an event from
    /// another instance to have arrived).
    pub fn invalidations(&self) -> watch::Receiver<u64> {
        self.inner.invalidations.subscribe()
    }

    /// The `system_settings` values, through the cache.
    pub async fn system(&self, db: &impl ConnectionTrait) -> AppResult<Arc<CachedSessionSettings>> {
        if let Some(hit) = self.get(CacheKey::System) {
            return Ok(hit);
        }
        let generation = self.generation();
        let row = system_settings::Entity::find_by_id(system_settings::SINGLETON_ID)
            .one(db)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("the system_settings row is missing")))?;
        Ok(self.insert(CacheKey::System, generation, Values::of_system(&row), None))
    }

    /// A district's values, through the cache; `None` if it does not exist.
    pub async fn district(
        &self,
        db: &impl ConnectionTrait,
        id: Uuid,
    ) -> AppResult<Option<Arc<CachedSessionSettings>>> {
        let key = CacheKey::District(id);
        if let Some(hit) = self.get(key) {
            return Ok(Some(hit));
        }
        let generation = self.generation();
        let Some(row) = tenant::Entity::find_by_id(id).one(db).await? else {
            return Ok(None);
        };
        Ok(Some(self.insert(
            key,
            generation,
            Values::of_district(&row),
            None,
        )))
    }

    /// A school's values and district, through the cache; `None` if it does
    /// not exist.
    pub async fn school(
        &self,
        db: &impl ConnectionTrait,
        id: Uuid,
    ) -> AppResult<Option<Arc<CachedSessionSettings>>> {
        let key = CacheKey::School(id);
        if let Some(hit) = self.get(key) {
            return Ok(Some(hit));
        }
        let generation = self.generation();
        let Some(row) = school::Entity::find_by_id(id).one(db).await? else {
            return Ok(None);
        };
        Ok(Some(self.insert(
            key,
            generation,
            Values::of_school(&row),
            Some(row.tenant_id),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::events::Logged;
    use crate::services::settings::resolution::{Property, SettingValue};

    fn cache() -> (SettingsCache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(DateTime::<Utc>::UNIX_EPOCH));
        (
            SettingsCache::new(clock.clone(), &SessionSecurityOptions::default()),
            clock,
        )
    }

    fn values(idle: i32) -> Values {
        let mut values = Values::default();
        values.set(Property::IdleTimeoutMinutes, Some(SettingValue::Int(idle)));
        values
    }

    #[test]
    fn keys_follow_the_settings_document() {
        let id = Uuid::nil();
        assert_eq!(CacheKey::System.to_string(), "SessionSettings:System");
        assert_eq!(
            CacheKey::District(id).to_string(),
            format!("SessionSettings:District:{id}")
        );
        assert_eq!(
            CacheKey::School(id).to_string(),
            format!("SessionSettings:School:{id}")
        );
    }

    #[test]
    fn entries_expire_after_five_minutes_without_a_read_and_reads_slide_the_expiry() {
        let (cache, clock) = cache();
        let generation = cache.generation();
        cache.insert(CacheKey::System, generation, values(10), None);
        clock.advance(Duration::minutes(4));
        assert!(cache.get(CacheKey::System).is_some());
        clock.advance(Duration::minutes(4));
        assert!(
            cache.get(CacheKey::System).is_some(),
            "the read at 4 min slid the expiry"
        );
        clock.advance(Duration::minutes(5) - Duration::seconds(1));
        assert!(cache.get(CacheKey::System).is_some());
        clock.advance(SLIDING_EXPIRY);
        assert!(cache.get(CacheKey::System).is_none());
    }

    #[test]
    fn invalidating_a_district_drops_its_schools_and_the_system_drops_everything() {
        let (cache, _) = cache();
        let (district, other, school, other_school) =
            (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let generation = cache.generation();
        cache.insert(CacheKey::System, generation, values(1), None);
        cache.insert(CacheKey::District(district), generation, values(2), None);
        cache.insert(CacheKey::District(other), generation, values(3), None);
        cache.insert(CacheKey::School(school), generation, values(4), Some(district));
        cache.insert(CacheKey::School(other_school), generation, values(5), Some(other));
        cache.invalidate(SettingsScope::Tenant(district));
        assert!(cache.contains(CacheKey::System));
        assert!(!cache.contains(CacheKey::District(district)));
        assert!(!cache.contains(CacheKey::School(school)));
        assert!(cache.contains(CacheKey::District(other)));
        assert!(cache.contains(CacheKey::School(other_school)));
        cache.invalidate(SettingsScope::School(other_school));
        assert!(!cache.contains(CacheKey::School(other_school)));
        cache.invalidate(SettingsScope::System);
        assert!(!cache.contains(CacheKey::District(other)));
        assert!(!cache.contains(CacheKey::System));
    }

    #[test]
    fn a_load_that_raced_with_an_invalidation_is_not_stored() {
        let (cache, _) = cache();
        let generation = cache.generation();
        cache.invalidate(SettingsScope::System);
        cache.insert(CacheKey::System, generation, values(1), None);
        assert!(!cache.contains(CacheKey::System));
    }

    #[tokio::test]
    async fn events_on_the_bus_invalidate() {
        let (cache, _) = cache();
        let bus = EventBus::detached();
        cache.listen(&bus);
        let generation = cache.generation();
        cache.insert(CacheKey::System, generation, values(1), None);
        let mut invalidations = cache.invalidations();
        bus.inject(Logged {
            id: 1,
            event: Event::SettingsChanged(SettingsScope::System),
        });
        let waited = invalidations
            .wait_for(|count| *count >= 1)
            .await
            .map(|count| *count);
        assert_eq!(waited.ok(), Some(1));
        assert!(!cache.contains(CacheKey::System));
    }
}
