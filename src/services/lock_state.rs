//! The merged lock state of a supervised user: what the lock manager
//! enforces on their devices now, across every session in force in every
//! one of their tenants (a device has one lock state).
//!
//! - **Most restrictive wins**: an app locked by any session in force is
//!   locked, even if another one whitelists it; an app is allowed when some
//!   session whitelists it and none locks it.
//! - A locked app stays locked until the last session locking it ends
//!   (`until`; none when one of them has no end).
//! - Sessions past their end never count, whether or not their expiry has
//!   been recorded yet.
//!
//! Every write that changes sessions announces, in its own transaction, a
//! `LOCK_STATE` event for each user whose merged state it changed, once
//! (see [`announce_changes`]): the lock manager follows those events, and
//! resumes from their cursors.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::session;
use entity::{lock_state, session_config};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::event_log;
use crate::events::{AccountChange, Event, LockStateEvent};
use crate::services::sessions::{StateReader, in_force_condition, is_in_force};

/// The first key of the advisory locks that serialise the lock-state
/// computations of one user (PostgreSQL); the second is from the user id.
const LOCK_STATE_LOCK_CLASS: i32 = 0x5e55_0012;

/// Most users one `lockState` read or `lockStateChanged` subscription may name.
pub const MAX_USERS: usize = 1000;

/// One session in force, as it contributes to a lock state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockingSession {
    /// The session.
    pub session_id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its guardian, if any.
    pub guardian_id: Option<Uuid>,
    /// Its config's label.
    pub label: Option<String>,
    /// The message its config shows the user.
    pub custom_message: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it is planned to end (none: until ended).
    pub ends_at: Option<DateTime<Utc>>,
    /// The apps it locks.
    pub locked_apps: Vec<String>,
    /// The apps it whitelists.
    pub whitelist: Vec<String>,
}

/// One locked app and what locks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockedApp {
    /// The app id.
    pub app: String,
    /// The sessions locking it, in the order of [`MergedLockState::sessions`].
    pub session_ids: Vec<Uuid>,
    /// When it stops being locked (as planned now): the latest end of those
    /// sessions; none when one of them has no end.
    pub until: Option<DateTime<Utc>>,
}

/// What is in force for one user: the sessions, the locked apps with what
/// locks them, the allowed apps, and the next change that time will make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergedLockState {
    /// The sessions in force, oldest first.
    pub sessions: Vec<LockingSession>,
    /// The locked apps, by app id.
    pub locked_apps: Vec<LockedApp>,
    /// The whitelisted apps that no session locks, by app id.
    pub allowed_apps: Vec<String>,
    /// The earliest planned end among the sessions: when this state changes
    /// by itself next.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// A lock profile as stored in `session_configs.lock_profile`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredProfile {
    locked_apps: Vec<String>,
    whitelist: Vec<String>,
}

/// What locks one app, while merging.
#[derive(Default)]
struct Locking {
    session_ids: Vec<Uuid>,
    /// The latest end so far: `None` before any session, `Some(None)` once
    /// one has no end.
    until: Option<Option<DateTime<Utc>>>,
}

/// Merges the sessions of one user into their lock state at `now`
/// (sessions not in force at `now` are left out).
pub fn merge(
    rows: &[(session::Model, Option<session_config::Model>)],
    now: DateTime<Utc>,
) -> MergedLockState {
    let mut sessions: Vec<LockingSession> = rows
        .iter()
        .filter(|(row, _)| is_in_force(row, now))
        .map(|(row, config)| {
            let profile: StoredProfile = config
                .as_ref()
                .and_then(|config| config.lock_profile.clone())
                .and_then(|json| serde_json::from_value(json).ok())
                .unwrap_or_default();
            LockingSession {
                session_id: row.id,
                tenant_id: row.tenant_id,
                guardian_id: row.guardian_id,
                label: config.as_ref().and_then(|config| config.label.clone()),
                custom_message: config.as_ref().and_then(|config| config.custom_message.clone()),
                started_at: row.start_time,
                ends_at: row.end_time,
                locked_apps: profile.locked_apps,
                whitelist: profile.whitelist,
            }
        })
        .collect();
    sessions.sort_by_key(|session| (session.started_at, session.session_id));
    let mut locked: BTreeMap<&str, Locking> = BTreeMap::new();
    let mut whitelisted: BTreeSet<&str> = BTreeSet::new();
    for session in &sessions {
        for app in &session.locked_apps {
            let Locking { session_ids, until } = locked.entry(app.as_str()).or_default();
            if !session_ids.contains(&session.session_id) {
                session_ids.push(session.session_id);
            }
            *until = Some(match (*until, session.ends_at) {
                (None, end) => end,
                (Some(None), _) | (Some(_), None) => None,
                (Some(Some(a)), Some(b)) => Some(a.max(b)),
            });
        }
        whitelisted.extend(session.whitelist.iter().map(String::as_str));
    }
    let allowed_apps = whitelisted
        .into_iter()
        .filter(|app| !locked.contains_key(app))
        .map(str::to_owned)
        .collect();
    let locked_apps = locked
        .into_iter()
        .map(|(app, locking)| LockedApp {
            app: app.to_owned(),
            session_ids: locking.session_ids,
            until: locking.until.flatten(),
        })
        .collect();
    let next_change_at = sessions.iter().filter_map(|session| session.ends_at).min();
    MergedLockState {
        sessions,
        locked_apps,
        allowed_apps,
        next_change_at,
    }
}

/// The sessions of `user_ids` that may be in force at `now`, with their configs.
async fn sessions_of(
    db: &impl ConnectionTrait,
    reader: StateReader<'_>,
    user_ids: &[Uuid],
    now: DateTime<Utc>,
) -> AppResult<HashMap<Uuid, Vec<(session::Model, Option<session_config::Model>)>>> {
    let mut query = session::Entity::find()
        .find_also_related(session_config::Entity)
        .filter(session::Column::UserId.is_in(user_ids.iter().copied()))
        // Sessions start when they are made: no start filter, which another
        // instance's clock running behind would turn into a missed session.
        .filter(in_force_condition(now))
        .order_by_asc(session::Column::StartTime)
        .order_by_asc(session::Column::Id);
    if let StateReader::User(scope) = reader {
        query = query.filter(scope.sessions());
    }
    let mut by_user: HashMap<Uuid, Vec<_>> = HashMap::new();
    for (row, config) in query.all(db).await? {
        by_user.entry(row.user_id).or_default().push((row, config));
    }
    Ok(by_user)
}

/// The lock states of `user_ids` at `now` (in the order given, each once),
/// with the event id they reflect: everything the log holds up to it is in
/// them (a subscription resuming `after` it misses nothing; what commits
/// meanwhile may be in both).
pub async fn read(
    db: &impl ConnectionTrait,
    reader: StateReader<'_>,
    user_ids: &[Uuid],
    now: DateTime<Utc>,
) -> AppResult<(i64, Vec<(Uuid, MergedLockState)>)> {
    let mut seen = std::collections::HashSet::with_capacity(user_ids.len());
    let unique: Vec<Uuid> = user_ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    if unique.len() > MAX_USERS {
        return Err(AppError::bad_input(
            "userIds",
            format!("at most {MAX_USERS} users at once (got {})", unique.len()),
        ));
    }
    // The cursor first: whatever commits after it is announced after it.
    let cursor = event_log::last_id(db).await?.unwrap_or(0);
    let mut by_user = sessions_of(db, reader, &unique, now).await?;
    let states = unique
        .into_iter()
        .map(|user_id| {
            let rows = by_user.remove(&user_id).unwrap_or_default();
            (user_id, merge(&rows, now))
        })
        .collect();
    Ok((cursor, states))
}

/// The second key of a user's advisory lock: the random tail of the id.
fn lock_key(user_id: Uuid) -> i32 {
    let bytes = user_id.as_bytes();
    i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]])
}

/// The users whose lock state `events` may have changed, in a fixed
/// order, and those of them whose account is gone.
fn affected_users(events: &[Event]) -> (BTreeSet<Uuid>, BTreeSet<Uuid>) {
    let mut affected = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    for event in events {
        match event {
            Event::Session(change) => {
                affected.insert(change.user_id);
            }
            Event::Account(change) if change.change == AccountChange::Deleted => {
                affected.insert(change.user_id);
                deleted.insert(change.user_id);
            }
            _ => {}
        }
    }
    (affected, deleted)
}

/// Inside the transaction of a write that caused `events`: the `LOCK_STATE`
/// events of the users whose merged state it changed, once each, with the
/// state recorded as announced. The computations of one user take turns
/// (an advisory lock on PostgreSQL; SQLite has one writer), so two writes
/// in different tenants cannot both announce a state that misses the other.
pub(crate) async fn announce_changes(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    events: &[Event],
) -> AppResult<Vec<Event>> {
    let mut announced = Vec::new();
    let (affected, deleted) = affected_users(events);
    // In the order of their lock keys, each key once: two users may share
    // a key, and every transaction must take the keys in one order.
    let mut affected: Vec<(i32, Uuid)> = affected
        .into_iter()
        .map(|user_id| (lock_key(user_id), user_id))
        .collect();
    affected.sort_unstable();
    let mut locked = None;
    for (key, user_id) in affected {
        if db.get_database_backend() == DatabaseBackend::Postgres && locked != Some(key) {
            db.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1, $2)",
                [LOCK_STATE_LOCK_CLASS.into(), key.into()],
            ))
            .await?;
            locked = Some(key);
        }
        let rows = sessions_of(db, StateReader::Service, &[user_id], now)
            .await?
            .remove(&user_id)
            .unwrap_or_default();
        let state = merge(&rows, now);
        // No row: never announced (sessions from before lock states were
        // recorded, or written around the application), so announced now
        // whatever it is — a reader may have seen it in `lockState`.
        let previous = lock_state::Entity::find_by_id(user_id)
            .one(db)
            .await?
            .and_then(|row| serde_json::from_value::<MergedLockState>(row.state).ok());
        let changed = previous.as_ref() != Some(&state);
        if deleted.contains(&user_id) {
            lock_state::Entity::delete_by_id(user_id).exec(db).await?;
        } else if changed {
            let json = serde_json::to_value(&state).map_err(AppError::internal)?;
            lock_state::Entity::insert(lock_state::ActiveModel {
                user_id: Set(user_id),
                state: Set(json),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::column(lock_state::Column::UserId)
                    .update_columns([lock_state::Column::State, lock_state::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(db)
            .await?;
        }
        if !changed {
            continue;
        }
        announced.push(Event::LockState(LockStateEvent {
            user_id,
            state,
            occurred_at: now,
        }));
    }
    Ok(announced)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use entity::session::SessionStatus;
    use serde_json::json;

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    fn session(
        end: Option<i64>,
        locked: &[&str],
        whitelist: &[&str],
    ) -> (session::Model, Option<session_config::Model>) {
        let id = Uuid::now_v7();
        let row = session::Model {
            id,
            tenant_id: Uuid::nil(),
            user_id: Uuid::nil(),
            guardian_id: None,
            name: "s".to_owned(),
            session_type: "Linear Flow".to_owned(),
            status: SessionStatus::Active,
            start_time: at(0),
            end_time: end.map(at),
            planned_end_time: end.map(at),
            ended_at: None,
            ended_by: None,
            end_kind: None,
            created_at: at(0),
            updated_at: at(0),
        };
        let config = session_config::Model {
            session_id: id,
            label: None,
            lock_profile: Some(json!({ "lockedApps": locked, "whitelist": whitelist })),
            notify_on_unlock: true,
            custom_message: None,
            created_at: at(0),
            updated_at: at(0),
        };
        (row, Some(config))
    }

    #[test]
    fn the_most_restrictive_session_wins_and_locks_last_until_the_latest_end() {
        let homework = session(Some(60), &["tiktok", "youtube"], &["duolingo"]);
        let games = session(Some(30), &["roblox", "youtube"], &["tiktok", "khan"]);
        let state = merge(&[homework.clone(), games.clone()], at(10));
        let apps: Vec<(&str, usize, Option<DateTime<Utc>>)> = state
            .locked_apps
            .iter()
            .map(|app| (app.app.as_str(), app.session_ids.len(), app.until))
            .collect();
        assert_eq!(
            apps,
            [
                ("roblox", 1, Some(at(30))),
                ("tiktok", 1, Some(at(60))),
                ("youtube", 2, Some(at(60))),
            ]
        );
        assert_eq!(
            state.allowed_apps,
            ["duolingo", "khan"],
            "tiktok is locked by the other"
        );
        assert_eq!(state.next_change_at, Some(at(30)));

        let later = merge(&[homework, games], at(30));
        assert_eq!(later.sessions.len(), 1, "a session at its end no longer counts");
        assert_eq!(later.allowed_apps, ["duolingo"]);
        assert_eq!(later.next_change_at, Some(at(60)));
    }

    #[test]
    fn a_session_without_an_end_locks_without_an_end() {
        let open = session(None, &["tiktok"], &[]);
        let timed = session(Some(30), &["tiktok"], &[]);
        let state = merge(&[timed, open], at(0));
        assert_eq!(state.locked_apps[0].until, None);
        assert_eq!(state.next_change_at, Some(at(30)));
        assert_eq!(merge(&[], at(0)), MergedLockState::default());
    }
}
