//! The end of a write: the events it caused go into the event log inside
//! its transaction, the transaction commits, and only then are subscribers
//! woken. A write that fails before the commit leaves no event behind and
//! wakes nobody.
//!
//! Issue 10 makes this the only way a write ends (services returning their
//! events, resolvers never beginning); the mutations that announce changes
//! already end here.

use sea_orm::{DatabaseTransaction, TransactionTrait};

use crate::error::AppResult;
use crate::event_log;
use crate::events::Event;
use crate::state::AppState;

/// Begins a unit of work.
pub async fn begin(state: &AppState) -> AppResult<DatabaseTransaction> {
    Ok(state.db.begin().await?)
}

/// Appends `events` to the event log in `txn`, commits, then publishes them.
pub async fn commit(state: &AppState, txn: DatabaseTransaction, events: Vec<Event>) -> AppResult<()> {
    event_log::append(&txn, state.clock.now(), &events).await?;
    txn.commit().await?;
    for event in events {
        state.events.publish(event).await;
    }
    Ok(())
}
