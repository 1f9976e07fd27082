//! The one way a write happens. [`write`] begins the transaction, runs the
//! service code (which answers with an [`Outcome`]: its value and the
//! events it caused), appends those events to the event log inside the same
//! transaction, commits, and only then wakes the subscribers.
//!
//! - A write that fails before the commit rolls back: no row, no event, no
//!   wake-up.
//! - A write that must keep what it wrote and still answer an error (a
//!   failed login records the failure) says so with [`Outcome::Refused`].
//! - Nothing after the commit can fail: whatever the caller answers must be
//!   computed inside the unit of work.
//! - The events a write causes may cause others, derived in the same
//!   transaction: a session change announces the new merged lock state of
//!   its user when it changed (`services::lock_state`).
//!
//! Services take the transaction and never commit or publish; resolvers
//! never begin.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use crate::error::{AppError, AppResult};
use crate::event_log;
use crate::events::{self, Event};
use crate::state::AppState;

/// How long a write waits for this instance to deliver its events.
const DELIVERY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// How a unit of work ends.
#[derive(Debug)]
#[must_use = "an outcome does nothing until the unit of work ends with it"]
pub enum Outcome<T> {
    /// Commit, announce `events`, answer `value`.
    Done {
        /// The answer.
        value: T,
        /// What the write caused.
        events: Vec<Event>,
    },
    /// Commit what was written, announce `events`, and answer `error`.
    Refused {
        /// The answer.
        error: AppError,
        /// What the write caused.
        events: Vec<Event>,
    },
}

impl<T> Outcome<T> {
    /// Commit and answer `value`; nothing to announce.
    pub fn quiet(value: T) -> Self {
        Self::Done {
            value,
            events: Vec::new(),
        }
    }

    /// Commit, announce `events`, answer `value`.
    pub fn announcing(value: T, events: Vec<Event>) -> Self {
        Self::Done { value, events }
    }

    /// Commit what was written, then answer `error`.
    pub fn refused(error: AppError) -> Self {
        Self::Refused {
            error,
            events: Vec::new(),
        }
    }
}

/// A service's `(value, events)` as the outcome that commits both.
impl<T> From<(T, Vec<Event>)> for Outcome<T> {
    fn from((value, events): (T, Vec<Event>)) -> Self {
        Self::announcing(value, events)
    }
}

/// Runs `work` as one unit of work (see the module documentation).
pub async fn write<T, F>(state: &AppState, work: F) -> AppResult<T>
where
    F: AsyncFnOnce(&DatabaseTransaction) -> AppResult<Outcome<T>>,
{
    let (answer, ids, events) = run(&state.db, state.clock.now(), work).await?;
    if let Some(&newest) = ids.last() {
        // What this write changed about identities applies here at once,
        // whatever delivery's pace (a revocation above all).
        state.identity.apply_committed(&events);
        state.events.wake();
        // This instance's caches and subscribers have the events when the
        // write answers (read-your-writes); a stalled delivery only delays.
        if !state.events.delivered_through(newest, DELIVERY_PATIENCE).await {
            tracing::warn!(
                event_id = newest,
                "an event was not delivered in time; answering anyway"
            );
        }
    }
    answer
}

/// [`write`] for a process that serves no subscribers (the command line):
/// the events are logged the same way, and the serving instances are woken
/// through the database (on SQLite they read them at their next poll).
pub async fn write_detached<T, F>(db: &DatabaseConnection, now: DateTime<Utc>, work: F) -> AppResult<T>
where
    F: AsyncFnOnce(&DatabaseTransaction) -> AppResult<Outcome<T>>,
{
    let (answer, _ids, _events) = run(db, now, work).await?;
    answer
}

/// Begins, runs `work`, appends its events (with the `NOTIFY` that wakes
/// the other instances when they commit), commits; the answer, the ids of
/// the events and the events.
async fn run<T, F>(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    work: F,
) -> AppResult<(AppResult<T>, Vec<i64>, Vec<Event>)>
where
    F: AsyncFnOnce(&DatabaseTransaction) -> AppResult<Outcome<T>>,
{
    let txn = db.begin().await?;
    // An error here drops `txn`, which rolls it back.
    let outcome = work(&txn).await?;
    let (answer, mut events) = match outcome {
        Outcome::Done { value, events } => (Ok(value), events),
        Outcome::Refused { error, events } => (Err(error), events),
    };
    // What the events mean for the lock states of their users, decided in
    // the same transaction: announced with them, or not at all.
    let lock_states = crate::services::lock_state::announce_changes(&txn, now, &events).await?;
    events.extend(lock_states);
    let ids = event_log::append(&txn, now, &events).await?;
    // The webhook deliveries of the notifications among them: queued with
    // them, so that none is lost.
    let logged: Vec<(i64, &Event)> = ids.iter().copied().zip(events.iter()).collect();
    crate::services::webhooks::enqueue(&txn, now, &logged).await?;
    if !ids.is_empty() {
        events::wake_instances_on_commit(&txn).await?;
    }
    txn.commit().await?;
    Ok((answer, ids, events))
}
