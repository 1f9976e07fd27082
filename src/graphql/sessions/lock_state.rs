//! The merged lock state of a supervised user, for the lock manager: read
//! (`lockState`) and followed (`lockStateChanged`).

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use uuid::Uuid;

use crate::auth::Identity;
use crate::config::ServiceGrant;
use crate::error::AppError;
use crate::events::{Event, encode_cursor};
use crate::graphql::{ContextExt, feed_after, feed_stream};
use crate::services::lock_state::{self, LockingSession, MAX_USERS, MergedLockState};
use crate::services::sessions::StateReader;

/// What is in force on a supervised user's devices now, merged across
/// every session in force in every one of their tenants (a device has one
/// lock state).
///
/// When sessions disagree, **the most restrictive wins**: an app locked by
/// any session in force is locked, even if another session whitelists it;
/// an app is allowed when some session whitelists it and none locks it.
/// Sessions past their end never count, whether or not their expiry has
/// been recorded yet. For a service credential the state spans every
/// tenant; for a person, only the sessions they may see count.
pub struct LockState {
    user_id: Uuid,
    cursor: String,
    state: Arc<MergedLockState>,
}

impl LockState {
    fn new(user_id: Uuid, cursor: String, state: MergedLockState) -> Self {
        Self {
            user_id,
            cursor,
            state: Arc::new(state),
        }
    }
}

#[Object(serial)]
impl LockState {
    /// The supervised user.
    async fn user_id(&self) -> Uuid {
        self.user_id
    }
    /// The event this state reflects: subscribe to `lockStateChanged` with
    /// `after` set to it to get every later change, in order, without a gap.
    async fn event_id(&self) -> &str {
        &self.cursor
    }
    /// Whether any session is in force.
    async fn locked(&self) -> bool {
        !self.state.sessions.is_empty()
    }
    /// The sessions in force, oldest first.
    async fn sessions(&self) -> Vec<LockStateSession> {
        (0..self.state.sessions.len())
            .map(|index| LockStateSession {
                state: self.state.clone(),
                index,
            })
            .collect()
    }
    /// The locked apps (by app id), each with the sessions locking it.
    async fn locked_apps(&self) -> Vec<LockedApp> {
        (0..self.state.locked_apps.len())
            .map(|index| LockedApp {
                state: self.state.clone(),
                index,
            })
            .collect()
    }
    /// Apps that stay usable while the rest is locked: whitelisted by some
    /// session in force and locked by none (by app id).
    async fn allowed_apps(&self) -> &[String] {
        &self.state.allowed_apps
    }
    /// When this state changes by itself next: the earliest planned end
    /// among the sessions in force (none when none has an end).
    async fn next_change_at(&self) -> Option<DateTime<Utc>> {
        self.state.next_change_at
    }
}

/// A session in force, as it contributes to a lock state.
pub struct LockStateSession {
    state: Arc<MergedLockState>,
    index: usize,
}

impl LockStateSession {
    fn session(&self) -> Option<&LockingSession> {
        self.state.sessions.get(self.index)
    }
}

#[Object(serial)]
impl LockStateSession {
    /// The session.
    async fn session_id(&self) -> Option<Uuid> {
        self.session().map(|session| session.session_id)
    }
    /// Its tenant.
    async fn tenant_id(&self) -> Option<Uuid> {
        self.session().map(|session| session.tenant_id)
    }
    /// Its guardian, if any.
    async fn guardian_id(&self) -> Option<Uuid> {
        self.session().and_then(|session| session.guardian_id)
    }
    /// Its config's label.
    async fn label(&self) -> Option<&str> {
        self.session().and_then(|session| session.label.as_deref())
    }
    /// The message its config shows the user.
    async fn custom_message(&self) -> Option<&str> {
        self.session()
            .and_then(|session| session.custom_message.as_deref())
    }
    /// When it started.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.session().map(|session| session.started_at)
    }
    /// When it is planned to end (none: until it is ended).
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.session().and_then(|session| session.ends_at)
    }
    /// The apps its lock profile locks.
    async fn locked_apps(&self) -> &[String] {
        self.session().map_or(&[], |session| &session.locked_apps)
    }
    /// The apps its lock profile whitelists.
    async fn whitelist(&self) -> &[String] {
        self.session().map_or(&[], |session| &session.whitelist)
    }
}

/// A locked app and what locks it.
pub struct LockedApp {
    state: Arc<MergedLockState>,
    index: usize,
}

#[Object(serial)]
impl LockedApp {
    /// The app id.
    async fn app(&self) -> Option<&str> {
        self.state.locked_apps.get(self.index).map(|app| app.app.as_str())
    }
    /// Until when it stays locked as planned now: the latest end of the
    /// sessions locking it; none when one of them has no end.
    async fn until(&self) -> Option<DateTime<Utc>> {
        self.state.locked_apps.get(self.index).and_then(|app| app.until)
    }
    /// The sessions locking it.
    async fn locked_by(&self) -> Vec<LockStateSession> {
        let Some(app) = self.state.locked_apps.get(self.index) else {
            return Vec::new();
        };
        self.state
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, session)| app.session_ids.contains(&session.session_id))
            .map(|(index, _)| LockStateSession {
                state: self.state.clone(),
                index,
            })
            .collect()
    }
}

/// The lock-state query.
#[derive(Default)]
pub struct LockStateQuery;

#[Object(serial)]
impl LockStateQuery {
    /// What is in force for a supervised user now, merged across all their
    /// sessions and tenants (see `LockState`). For the lock manager
    /// (service credential granted `lock_state`), and for people within
    /// their scope.
    async fn lock_state(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<LockState> {
        let reader = super::state::reader(ctx.identity())?;
        let state = ctx.state()?;
        let (cursor, mut states) =
            lock_state::read(&state.db, reader.as_reader(), &[user_id], state.clock.now()).await?;
        let (user_id, merged) = states.pop().unwrap_or((user_id, MergedLockState::default()));
        Ok(LockState::new(user_id, encode_cursor(cursor), merged))
    }
}

/// The lock-state subscription.
#[derive(Default)]
pub struct LockStateSubscription;

#[Subscription]
impl LockStateSubscription {
    /// For the lock manager (service credential granted `lock_state`): the
    /// new merged lock state of any of `userIds` whenever it changes
    /// (a session started, ended, revoked, expired — at its end, not at a
    /// later sweep —, reconfigured or deleted), once per change, each with
    /// its `eventId`. Without `after`, the current state of each user comes
    /// first; with `after` (the last `eventId` received), every change
    /// since it, then live: nothing is missed across a reconnection.
    async fn lock_state_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The users to follow (at most 1000).")] user_ids: Vec<Uuid>,
        #[graphql(desc = "Resume after this `eventId`: every change since it, then live.")] after: Option<
            String,
        >,
    ) -> Result<BoxStream<'static, Result<LockState>>> {
        let Identity::Service(service) = ctx.identity() else {
            return Err(AppError::forbidden(
                "lockStateChanged is for the lock manager's service credential; people follow sessionStatusChanged",
            )
            .into());
        };
        service.require(ServiceGrant::LockState)?;
        let watched: HashSet<Uuid> = user_ids.iter().copied().collect();
        if watched.is_empty() || watched.len() > MAX_USERS {
            return Err(AppError::bad_input("userIds", format!("name 1 to {MAX_USERS} users")).into());
        }
        let state = ctx.state()?.clone();
        let (initial, feed) = match after {
            Some(after) => (
                Vec::new(),
                feed_after(&state, Some(&after), &["LOCK_STATE"], None).await?,
            ),
            None => {
                // The cursor is read before the states: the feed replays
                // from it, so nothing committed meanwhile is missed.
                let now = state.clock.now();
                let (cursor, states) =
                    lock_state::read(&state.db, StateReader::Service, &user_ids, now).await?;
                let cursor = encode_cursor(cursor);
                let feed = feed_after(&state, Some(&cursor), &["LOCK_STATE"], None).await?;
                let initial = states
                    .into_iter()
                    .map(|(user_id, merged)| Ok(LockState::new(user_id, cursor.clone(), merged)))
                    .collect();
                (initial, feed)
            }
        };
        let changes = feed_stream(feed, move |logged| match &logged.event {
            Event::LockState(change) if watched.contains(&change.user_id) => Some(LockState::new(
                change.user_id,
                logged.cursor(),
                change.state.clone(),
            )),
            _ => None,
        });
        Ok(stream::iter(initial).chain(changes).boxed())
    }
}
