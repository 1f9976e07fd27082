//! Background work: the sweepers that expire sessions and login sessions,
//! and delete lapsed invitations and login-throttle counts.

use std::time::Duration;

use tokio::task::JoinHandle;

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use entity::session::{self, SessionStatus};
use entity::{session_log, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::AppResult;
use crate::events::Event;
use crate::services::login_policy::{deadline, expire_if_due, warn_if_due, warning_at};
use crate::services::sessions::expire_due;
use crate::services::settings::effective_for;
use crate::state::AppState;
use crate::unit_of_work::{self, Outcome};

/// Most sessions one sweep expires; the next sweep takes the rest.
const SWEEP_BATCH: u64 = 500;

/// Expires every active session past its end time (by the application's
/// clock) and announces each change. Returns how many it expired.
pub async fn sweep_expired_sessions(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let expired = unit_of_work::write(state, async |txn| {
        let events = expire_due(txn, now, SWEEP_BATCH).await?;
        Ok(Outcome::announcing(events.len(), events))
    })
    .await?;
    if expired > 0 {
        tracing::info!(expired, "expired sessions past their end time");
    }
    Ok(expired)
}

/// Ends every login session past its idle or absolute timeout (by the
/// application's clock, under its effective settings) and announces each;
/// announces `EXPIRING_SOON` once per deadline for those within their
/// warning period. Returns how many login sessions it ended.
pub async fn sweep_login_sessions(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let open = session_log::Entity::find()
        .filter(session_log::Column::LogoutAt.is_null())
        .order_by_asc(session_log::Column::LastSeenAt)
        .limit(SWEEP_BATCH * 10)
        .all(&state.db)
        .await?;
    let user_ids: HashSet<Uuid> = open.iter().map(|log| log.user_id).collect();
    let users: HashMap<Uuid, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|account| (account.id, account))
        .collect();
    let mut ended = 0;
    for log in open {
        let Some(account) = users.get(&log.user_id) else {
            continue;
        };
        let settings = effective_for(&state.db, &state.settings_cache, account, log.tenant_id).await?;
        let due = deadline(&log, &settings);
        let warned = log.expiry_warned_for == Some(due.at);
        if now < warning_at(due, &settings) || (warned && now < due.at) {
            continue;
        }
        // One unit of work per login session, after its settings are read
        // (SQLite's single connection cannot serve a read during a write).
        ended += unit_of_work::write(state, async |txn| {
            if let Some(expired) = expire_if_due(txn, &log, &settings, now).await? {
                return Ok(Outcome::announcing(1, vec![expired]));
            }
            let warned = warn_if_due(txn, &log, &settings, now).await?;
            Ok(Outcome::announcing(0, warned.into_iter().collect()))
        })
        .await?;
    }
    if ended > 0 {
        tracing::info!(ended, "ended login sessions past their timeouts");
    }
    Ok(ended)
}

/// Deletes lapsed invitations, login-throttle rows whose window has passed,
/// events past their retention and completed webhook deliveries past
/// theirs; returns how many rows it deleted.
pub async fn sweep_account_records(state: &AppState) -> AppResult<u64> {
    let now = state.clock.now();
    let (invitations, throttles) = unit_of_work::write(state, async |txn| {
        let invitations = crate::services::invitations::sweep_expired(txn, now).await?;
        let throttles = crate::services::throttle::sweep(txn, &state.settings.login_throttle, now).await?;
        Ok(Outcome::quiet((invitations, throttles)))
    })
    .await?;
    let retention = chrono::Duration::days(state.settings.events.retention_days);
    let events = crate::event_log::sweep(&state.db, now, retention).await?;
    let log_retention = chrono::Duration::days(state.settings.webhooks.log_retention_days);
    let deliveries = unit_of_work::write(state, async |txn| {
        Ok(Outcome::quiet(
            crate::services::webhooks::sweep_log(txn, now - log_retention).await?,
        ))
    })
    .await?;
    Ok(invitations + throttles + events + deliveries)
}

/// Runs [`sweep_expired_sessions`], [`sweep_login_sessions`] and
/// [`sweep_account_records`] every `interval` until aborted.
pub(crate) fn spawn_expiry_sweeper(state: AppState, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = sweep_expired_sessions(&state).await {
                tracing::error!(error = ?error, "expiry sweep failed");
            }
            if let Err(error) = sweep_login_sessions(&state).await {
                tracing::error!(error = ?error, "login-session sweep failed");
            }
            if let Err(error) = sweep_account_records(&state).await {
                tracing::error!(error = ?error, "invitation and throttle sweep failed");
            }
        }
    })
}

/// Records the expiry of each session at its planned end: a timer on the
/// earliest end of the active sessions (read from the database after each
/// expiry), brought forward by the events of sessions started or moved
/// meanwhile on any instance. Every instance runs one; each expiry is
/// recorded and announced once (the sweep's rule), and the sweep catches
/// whatever a timer missed.
pub(crate) struct DeadlineScheduler {
    first: Option<chrono::DateTime<chrono::Utc>>,
    hints: Arc<watch::Sender<Option<chrono::DateTime<chrono::Utc>>>>,
}

impl DeadlineScheduler {
    /// Reads the first deadline and starts listening for earlier ones
    /// (before the application serves, so that nothing it announces is
    /// missed and nothing here runs while it serves until a deadline).
    pub(crate) async fn prepare(state: &AppState) -> AppResult<Self> {
        let hints = Arc::new(watch::Sender::new(None));
        let sender = hints.clone();
        state.events.observe(move |event| {
            let Event::Session(change) = event else { return };
            let Some(end) = change
                .session
                .as_ref()
                .filter(|row| row.status == SessionStatus::Active)
                .and_then(|row| row.end_time)
            else {
                return;
            };
            sender.send_if_modified(|earliest| {
                let sooner = earliest.is_none_or(|earliest| end < earliest);
                if sooner {
                    *earliest = Some(end);
                }
                sooner
            });
        });
        Ok(Self {
            first: next_deadline(&state.db).await?,
            hints,
        })
    }

    /// Runs the timer until aborted.
    pub(crate) fn spawn(self, state: AppState) -> JoinHandle<()> {
        tokio::spawn(async move {
            let Self { first, hints } = self;
            let mut target = first;
            let mut hinted = hints.subscribe();
            loop {
                let hint = *hinted.borrow_and_update();
                let due = match (target, hint) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let timer = async {
                    match due {
                        Some(at) => state.clock.sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = timer => {}
                    changed = hinted.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        continue;
                    }
                }
                // Forgotten before the database is read: a hint from now on
                // is either in what it reads or kept for the next round.
                hints.send_replace(None);
                loop {
                    match sweep_expired_sessions(&state).await {
                        Ok(expired) if expired as u64 >= SWEEP_BATCH => {}
                        Ok(_) => break,
                        Err(error) => {
                            tracing::error!(error = ?error, "could not expire sessions at their end; the sweep will");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    }
                }
                target = match next_deadline(&state.db).await {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::error!(error = ?error, "could not read the next session deadline; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Some(state.clock.now())
                    }
                };
            }
        })
    }
}

/// The earliest planned end of an active session, if any has one.
async fn next_deadline(
    db: &impl sea_orm::ConnectionTrait,
) -> AppResult<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(session::Entity::find()
        .filter(session::Column::Status.eq(SessionStatus::Active))
        .filter(session::Column::EndTime.is_not_null())
        .order_by_asc(session::Column::EndTime)
        .one(db)
        .await?
        .and_then(|row| row.end_time))
}
