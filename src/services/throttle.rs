//! Throttling of failed password checks, after Keycloak's brute-force
//! detection, shared by every instance through `login_throttles`.
//!
//! Each check counts under two keys: the normalised e-mail address and the
//! client address (an IPv6 address by its /64). A failure counts under
//! both; a success clears the e-mail address's count. Once a key reaches
//! its threshold it is locked: the first lockout lasts the configured time,
//! each further failure doubles it, up to the maximum. While any of its
//! keys is locked, a check is refused with `TOO_MANY_ATTEMPTS` and its
//! retry time without any hashing, whether or not the e-mail has an
//! account. Guesses already under way when a key locks are few: at most one
//! login per request, and the hashing pool admits only so many at once.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use entity::login_throttle;
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::config::LoginThrottleSettings;
use crate::error::{AppError, AppResult};

/// What a key counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A normalised e-mail address: locked after a few failures.
    Email,
    /// A client address: slowed down after many.
    Address,
}

/// One key of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    /// What it counts.
    pub kind: KeyKind,
    /// The stored key: the kind and a SHA-256 digest.
    pub key: String,
}

fn digest(kind: &str, value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{kind}:{hex}")
}

impl ThrottleKey {
    /// The key of a normalised e-mail address.
    pub fn email(normalised: &str) -> Self {
        Self {
            kind: KeyKind::Email,
            key: digest("email", normalised),
        }
    }

    /// The key of a client address: an IPv4 address as it is, an IPv6
    /// address by its /64 (one subscriber's network), anything else as sent.
    pub fn address(address: &str) -> Self {
        let value = match address.trim().parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let segments = v6.segments();
                    format!(
                        "{:x}:{:x}:{:x}:{:x}::/64",
                        segments[0], segments[1], segments[2], segments[3]
                    )
                }
            },
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Err(_) => address.trim().to_owned(),
        };
        Self {
            kind: KeyKind::Address,
            key: digest("address", &value),
        }
    }
}

/// The keys of a check by `email` from `address`.
pub fn keys_for(email: &str, address: Option<&str>) -> Vec<ThrottleKey> {
    let mut keys = vec![ThrottleKey::email(email)];
    if let Some(address) = address {
        keys.push(ThrottleKey::address(address));
    }
    keys
}

/// A check let through: its keys, for recording how it went.
#[derive(Debug, Clone)]
pub struct Admission {
    keys: Vec<ThrottleKey>,
}

fn threshold(settings: &LoginThrottleSettings, kind: KeyKind) -> (i32, i64) {
    match kind {
        KeyKind::Email => (settings.email_max_failures, settings.email_lockout_secs),
        KeyKind::Address => (settings.address_max_failures, settings.address_delay_secs),
    }
}

/// The lockout after `failures` failures, if any: the first at the
/// threshold, doubling with each further one, capped.
pub fn lockout(settings: &LoginThrottleSettings, kind: KeyKind, failures: i32) -> Option<Duration> {
    let (max_failures, first) = threshold(settings, kind);
    if failures < max_failures {
        return None;
    }
    let doublings = Ord::min(u32::try_from(failures - max_failures).unwrap_or(u32::MAX), 30);
    let secs = Ord::min(
        first.saturating_mul(1_i64 << doublings),
        settings.max_lockout_secs,
    );
    Some(Duration::seconds(secs))
}

/// Lets a check under `keys` through, or refuses it with
/// `TOO_MANY_ATTEMPTS` when any of them is locked.
pub async fn admit(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    mut keys: Vec<ThrottleKey>,
) -> AppResult<Admission> {
    // A fixed order, so that concurrent failures sharing keys lock the rows
    // in the same order and cannot deadlock.
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    keys.dedup();
    let locked_until = login_throttle::Entity::find()
        .filter(login_throttle::Column::Key.is_in(keys.iter().map(|key| key.key.clone())))
        .filter(login_throttle::Column::LockedUntil.gt(now))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| row.locked_until)
        .max();
    match locked_until {
        Some(until) => Err(AppError::too_many_attempts(now, until)),
        None => Ok(Admission { keys }),
    }
}

/// The check failed: counts it under every key (in one transaction, rows
/// locked, so that concurrent failures on several instances all count) and
/// returns the lockouts it started, with their ends. Concurrent guesses
/// are bounded meanwhile by the hashing pool and one login per request.
pub async fn failed(
    db: &DatabaseConnection,
    settings: &LoginThrottleSettings,
    now: DateTime<Utc>,
    admission: &Admission,
) -> AppResult<Vec<(KeyKind, DateTime<Utc>)>> {
    let window = Duration::seconds(settings.window_secs);
    let txn = db.begin().await?;
    let postgres = txn.get_database_backend() == DatabaseBackend::Postgres;
    let mut lockouts = Vec::new();
    for key in &admission.keys {
        login_throttle::Entity::insert(login_throttle::ActiveModel {
            key: Set(key.key.clone()),
            failures: Set(0),
            last_failure_at: Set(now),
            locked_until: Set(None),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(login_throttle::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        let mut query = login_throttle::Entity::find_by_id(key.key.clone());
        if postgres {
            query = query.lock_exclusive();
        }
        let row = query
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("throttle row vanished")))?;
        let was_locked = row.locked_until.is_some_and(|until| until > now);
        let previous = if now - row.last_failure_at > window {
            0
        } else {
            row.failures
        };
        let failures = previous.saturating_add(1);
        let until = lockout(settings, key.kind, failures).map(|lockout| now + lockout);
        // A failure that was let through while another was locking the key
        // never shortens the lock.
        let until = match (until, row.locked_until) {
            (Some(new), Some(old)) => Some(Ord::max(new, old)),
            (new, old) => new.or(old.filter(|old| *old > now)),
        };
        if let Some(until) = until
            && !was_locked
        {
            lockouts.push((key.kind, until));
        }
        let mut change: login_throttle::ActiveModel = row.into();
        change.failures = Set(failures);
        change.last_failure_at = Set(now);
        change.locked_until = Set(until);
        change.updated_at = Set(now);
        change.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(lockouts)
}

/// The check succeeded: the e-mail address's failures are forgotten. The
/// client address's stay (a success from a shared address says nothing
/// about the failures of others behind it).
pub async fn succeeded(db: &impl ConnectionTrait, admission: &Admission) -> AppResult<()> {
    for key in admission.keys.iter().filter(|key| key.kind == KeyKind::Email) {
        login_throttle::Entity::delete_by_id(key.key.clone())
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Lifts the lock and forgets the failures of `key`; whether there were any.
pub async fn clear(db: &impl ConnectionTrait, key: &ThrottleKey) -> AppResult<bool> {
    let deleted = login_throttle::Entity::delete_by_id(key.key.clone())
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Deletes the rows whose window has passed and whose lock has ended;
/// returns how many.
pub async fn sweep(
    db: &impl ConnectionTrait,
    settings: &LoginThrottleSettings,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let stale = now - Duration::seconds(settings.window_secs);
    let deleted = login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::LastFailureAt.lt(stale))
        .filter(
            Condition::any()
                .add(login_throttle::Column::LockedUntil.is_null())
                .add(login_throttle::Column::LockedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_start_at_the_threshold_double_and_are_capped() {
        let settings = LoginThrottleSettings::default();
        let secs = |failures| lockout(&settings, KeyKind::Email, failures).map(|d| d.num_seconds());
        assert_eq!(secs(4), None);
        assert_eq!(secs(5), Some(30));
        assert_eq!(secs(6), Some(60));
        assert_eq!(secs(7), Some(120));
        assert_eq!(secs(10), Some(900));
        assert_eq!(secs(i32::MAX), Some(900));
        let address = |failures| lockout(&settings, KeyKind::Address, failures).map(|d| d.num_seconds());
        assert_eq!(address(99), None);
        assert_eq!(address(100), Some(1));
        assert_eq!(address(101), Some(2));
    }

    #[test]
    fn addresses_of_one_ipv6_network_share_a_key_and_digests_hide_the_value() {
        let a = ThrottleKey::address("2001:db8:1:2:aaaa::1");
        let b = ThrottleKey::address("2001:db8:1:2:bbbb::2");
        let other = ThrottleKey::address("2001:db8:1:3::1");
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(
            ThrottleKey::address("::ffff:192.0.2.1"),
            ThrottleKey::address("192.0.2.1")
        );
        let email = ThrottleKey::email("ada@example.org");
        assert!(email.key.starts_with("email:") && !email.key.contains("ada"));
        assert_eq!(email.key.len(), "email:".len() + 64);
    }
}
