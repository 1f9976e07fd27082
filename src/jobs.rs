//! Background work: the expiry sweeper.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::AppResult;
use crate::graphql::AppState;
use crate::services::sessions::expire_due;

/// Most sessions one sweep expires; the next sweep takes the rest.
const SWEEP_BATCH: u64 = 500;

/// Expires every active session past its end time (by the application's
/// clock) and announces each change. Returns how many it expired.
pub async fn sweep_expired_sessions(state: &AppState) -> AppResult<usize> {
    let events = expire_due(&state.db, state.clock.now(), SWEEP_BATCH).await?;
    let expired = events.len();
    for event in events {
        state.events.publish(event).await;
    }
    if expired > 0 {
        tracing::info!(expired, "expired sessions past their end time");
    }
    Ok(expired)
}

/// Runs [`sweep_expired_sessions`] every `interval` until aborted.
pub fn spawn_expiry_sweeper(state: AppState, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = sweep_expired_sessions(&state).await {
                tracing::error!(error = ?error, "expiry sweep failed");
            }
        }
    })
}
