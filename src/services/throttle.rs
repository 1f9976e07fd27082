//! Throttling of failed password checks, after Keycloak's brute-force
//! detection, shared by every instance through `login_throttles`.
//!
//! Each check counts under two keys, the normalised e-mail address and the
//! client address (an IPv6 address by its /64); both are stored as digests.
//!
//! - **E-mail address.** A failure counts; at the threshold the address is
//!   locked, the first lockout lasting the configured time and each further
//!   failure doubling it, up to the maximum. While it is locked every check
//!   is refused with `TOO_MANY_ATTEMPTS` and its retry time, without any
//!   hashing, whether or not the address has an account. A success forgets
//!   its failures. Once an address has failed at all, each check is counted
//!   *before* its password is verified (and given back if it succeeds), so
//!   that concurrent guesses cannot all slip in before the first failure is
//!   written; an address that never failed is not held up by its own
//!   concurrent logins.
//! - **Client address.** Past its (high) threshold it is only slowed down:
//!   one check per interval, right or wrong, for everyone behind it, so that
//!   a school behind one NAT is slowed by a child's script, never locked out.
//!
//! Failures are forgotten a window after the latest one.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use entity::login_throttle;
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::LoginThrottleSettings;
use crate::error::{AppError, AppResult};
use crate::services::audit::{self, AccountAction, AccountRecord};

/// What a key counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A normalised e-mail address: locked after a few failures.
    Email,
    /// A client address: slowed down after many.
    Address,
}

/// One key of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThrottleKey {
    /// What it counts.
    pub kind: KeyKind,
    /// The stored key: the kind and a SHA-256 digest.
    pub key: String,
    /// The value as it is written in audit records (the client address;
    /// nothing for an e-mail address, whose account is named instead).
    pub label: Option<String>,
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
            label: None,
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
            label: Some(value),
        }
    }
}

/// The keys of a check by `email` from `address`.
pub(crate) fn keys_for(email: &str, address: Option<&str>) -> Vec<ThrottleKey> {
    let mut keys = vec![ThrottleKey::email(email)];
    if let Some(address) = address {
        keys.push(ThrottleKey::address(address));
    }
    keys
}

/// A check let through: its keys, and what the admission already counted.
#[derive(Debug, Clone)]
pub struct Admission {
    keys: Vec<ThrottleKey>,
    /// The e-mail address's check was counted as a failure in advance.
    reserved: bool,
    /// Lockouts the advance count started (audited if the check fails).
    lockouts: Vec<(ThrottleKey, DateTime<Utc>)>,
}

/// The lockout of an e-mail address after `failures` failures, if any: the
/// first at the threshold, doubling with each further one, capped.
pub fn lockout(settings: &LoginThrottleSettings, failures: i32) -> Option<Duration> {
    if failures < settings.email_max_failures {
        return None;
    }
    let doublings = Ord::min(
        u32::try_from(failures - settings.email_max_failures).unwrap_or(u32::MAX),
        30,
    );
    let secs = Ord::min(
        settings.email_lockout_secs.saturating_mul(1_i64 << doublings),
        settings.max_lockout_secs,
    );
    Some(Duration::seconds(secs))
}

/// The failures of `row` that still count at `now`.
fn current_failures(
    settings: &LoginThrottleSettings,
    row: &login_throttle::Model,
    now: DateTime<Utc>,
) -> i32 {
    if now - row.last_failure_at > Duration::seconds(settings.window_secs) {
        0
    } else {
        row.failures
    }
}

/// The row of `key`, created empty if missing, locked for this transaction
/// (PostgreSQL; SQLite's single writer serialises anyway).
async fn locked_row(
    txn: &impl ConnectionTrait,
    key: &ThrottleKey,
    now: DateTime<Utc>,
) -> AppResult<login_throttle::Model> {
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
    .exec_without_returning(txn)
    .await?;
    let mut query = login_throttle::Entity::find_by_id(key.key.clone());
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(txn)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("throttle row vanished")))
}

/// Lets a check under `keys` through, or refuses it with
/// `TOO_MANY_ATTEMPTS` (counting nothing) when the e-mail address is locked
/// or the slowed-down client address has had its check for this interval.
pub(crate) async fn admit(
    db: &impl ConnectionTrait,
    settings: &LoginThrottleSettings,
    now: DateTime<Utc>,
    mut keys: Vec<ThrottleKey>,
) -> AppResult<Admission> {
    // A fixed order, so that concurrent checks sharing keys lock the rows
    // in the same order and cannot deadlock.
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    keys.dedup();
    let existing = login_throttle::Entity::find()
        .filter(login_throttle::Column::Key.is_in(keys.iter().map(|key| key.key.clone())))
        .all(db)
        .await?;
    if let Some(until) = existing
        .iter()
        .filter_map(|row| row.locked_until)
        .filter(|until| *until > now)
        .max()
    {
        return Err(AppError::too_many_attempts(now, until));
    }
    // Nothing to write for keys in good standing: no failure of the e-mail
    // address, the client address below its threshold.
    let suspicious = existing.iter().any(|row| {
        let kind = keys.iter().find(|key| key.key == row.key).map(|key| key.kind);
        let failures = current_failures(settings, row, now);
        match kind {
            Some(KeyKind::Email) => failures > 0,
            Some(KeyKind::Address) => failures >= settings.address_max_failures,
            None => false,
        }
    });
    if !suspicious {
        return Ok(Admission {
            keys,
            reserved: false,
            lockouts: Vec::new(),
        });
    }
    let txn = db;
    let mut admission = Admission {
        keys: keys.clone(),
        reserved: false,
        lockouts: Vec::new(),
    };
    let mut changes = Vec::new();
    for key in &keys {
        let row = locked_row(txn, key, now).await?;
        if let Some(until) = row.locked_until.filter(|until| *until > now) {
            return Err(AppError::too_many_attempts(now, until));
        }
        let failures = current_failures(settings, &row, now);
        match key.kind {
            KeyKind::Email if failures > 0 => {
                let counted = failures.saturating_add(1);
                let until = lockout(settings, counted).map(|lockout| now + lockout);
                if let Some(until) = until {
                    admission.lockouts.push((key.clone(), until));
                }
                admission.reserved = true;
                let mut change: login_throttle::ActiveModel = row.into();
                change.failures = Set(counted);
                change.last_failure_at = Set(now);
                change.locked_until = Set(until);
                change.updated_at = Set(now);
                changes.push(change);
            }
            KeyKind::Address if failures >= settings.address_max_failures => {
                // This check takes the interval; the next waits for it.
                let mut change: login_throttle::ActiveModel = row.into();
                change.locked_until = Set(Some(now + Duration::seconds(settings.address_interval_secs)));
                change.updated_at = Set(now);
                changes.push(change);
            }
            _ => {}
        }
    }
    for change in changes {
        change.update(txn).await?;
    }
    Ok(admission)
}

/// The check failed: counts it under every key not already counted (in one
/// transaction, rows locked, so that concurrent failures on several
/// instances all count), and audits each lockout or slow-down it started,
/// naming `account` when the e-mail address has one.
pub async fn failed(
    db: &impl ConnectionTrait,
    settings: &LoginThrottleSettings,
    now: DateTime<Utc>,
    admission: &Admission,
    account: Option<Uuid>,
) -> AppResult<()> {
    let txn = db;
    let mut started: Vec<(ThrottleKey, Option<DateTime<Utc>>)> = admission
        .lockouts
        .iter()
        .map(|(key, until)| (key.clone(), Some(*until)))
        .collect();
    for key in &admission.keys {
        if key.kind == KeyKind::Email && admission.reserved {
            continue;
        }
        let row = locked_row(txn, key, now).await?;
        let was_locked = row.locked_until.is_some_and(|until| until > now);
        let failures = current_failures(settings, &row, now).saturating_add(1);
        let mut change: login_throttle::ActiveModel = row.clone().into();
        match key.kind {
            KeyKind::Email => {
                let until = lockout(settings, failures).map(|lockout| now + lockout);
                // A failure let through while another locked the address
                // never shortens the lock.
                let until = match (until, row.locked_until.filter(|old| *old > now)) {
                    (Some(new), Some(old)) => Some(Ord::max(new, old)),
                    (new, old) => new.or(old),
                };
                if let Some(until) = until
                    && !was_locked
                {
                    started.push((key.clone(), Some(until)));
                }
                change.locked_until = Set(until);
            }
            KeyKind::Address => {
                if failures == settings.address_max_failures {
                    started.push((key.clone(), None));
                }
            }
        }
        change.failures = Set(failures);
        change.last_failure_at = Set(now);
        change.updated_at = Set(now);
        change.update(txn).await?;
    }
    for (key, until) in started {
        let (resource, details) = match (key.kind, account) {
            (KeyKind::Email, Some(account)) => (
                format!("User:{account}"),
                format!(
                    "failed password checks locked the account's e-mail address until {}",
                    until.map(|until| until.to_rfc3339()).unwrap_or_default()
                ),
            ),
            (KeyKind::Email, None) => (
                "Login".to_owned(),
                format!(
                    "failed password checks locked an e-mail address without an account until {}",
                    until.map(|until| until.to_rfc3339()).unwrap_or_default()
                ),
            ),
            (KeyKind::Address, _) => (
                "Login".to_owned(),
                format!(
                    "{} failed password checks from {}: slowed down to one check per {} s",
                    settings.address_max_failures,
                    key.label.as_deref().unwrap_or("an unknown address"),
                    settings.address_interval_secs
                ),
            ),
        };
        audit::write(
            txn,
            now,
            AccountRecord {
                tenant_id: None,
                actor_id: None,
                action: AccountAction::LoginLockout,
                resource,
                details,
            },
        )
        .await?;
        tracing::warn!(kind = ?key.kind, "login lockout");
    }
    Ok(())
}

/// The check succeeded: the e-mail address's failures (and any count taken
/// in advance) are forgotten. The client address's stay: a success from a
/// shared address says nothing about the failures of others behind it.
pub(crate) async fn succeeded(db: &impl ConnectionTrait, admission: &Admission) -> AppResult<()> {
    for key in admission.keys.iter().filter(|key| key.kind == KeyKind::Email) {
        login_throttle::Entity::delete_by_id(key.key.clone())
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Lifts the lock and forgets the failures of `key`; whether there were any.
pub(crate) async fn clear(db: &impl ConnectionTrait, key: &ThrottleKey) -> AppResult<bool> {
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
        let secs = |failures| lockout(&settings, failures).map(|d| d.num_seconds());
        assert_eq!(secs(4), None);
        assert_eq!(secs(5), Some(30));
        assert_eq!(secs(6), Some(60));
        assert_eq!(secs(7), Some(120));
        assert_eq!(secs(10), Some(900));
        assert_eq!(secs(i32::MAX), Some(900));
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
