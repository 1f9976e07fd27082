//! The effective session settings applied to login sessions: idle and
//! absolute timeouts, the expiry warning, the concurrent-session limit and
//! invalidate-on-login (document 003).

use chrono::{DateTime, Duration, Utc};
use entity::session_log::{self, SessionEndReason};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::error::{AppError, AppResult};
use crate::events::{Event, LoginSessionChange, LoginSessionEvent};
use crate::services::auth::end_login_session;
use entity::user;
use uuid::Uuid;

use crate::services::settings::{EffectiveSettings, SettingsCache, effective_for};

pub use crate::config::ConcurrentSessionPolicy;

/// When a login session ends by itself, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The instant it expires.
    pub at: DateTime<Utc>,
    /// Idle or absolute timeout, whichever comes first.
    pub reason: SessionEndReason,
}

/// The expiry of `log` under `settings`: idle timeout after the last
/// activity, absolute timeout after login, whichever is first.
pub fn deadline(log: &session_log::Model, settings: &EffectiveSettings) -> Deadline {
    let idle = log.last_seen_at + Duration::minutes(i64::from(settings.idle_timeout_minutes));
    let absolute = log.login_at + Duration::minutes(i64::from(settings.absolute_timeout_minutes));
    if idle < absolute {
        Deadline {
            at: idle,
            reason: SessionEndReason::ExpiredIdle,
        }
    } else {
        Deadline {
            at: absolute,
            reason: SessionEndReason::ExpiredAbsolute,
        }
    }
}

/// When the expiry warning of `deadline` is due.
pub(crate) fn warning_at(deadline: Deadline, settings: &EffectiveSettings) -> DateTime<Utc> {
    deadline.at - Duration::minutes(i64::from(settings.session_warning_minutes))
}

/// The event announcing that a login session ended for `reason`.
pub(crate) fn ended_event(
    login_session_id: Uuid,
    user_id: Uuid,
    reason: SessionEndReason,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Event {
    let change = match reason {
        SessionEndReason::ExpiredIdle | SessionEndReason::ExpiredAbsolute => LoginSessionChange::Expired,
        SessionEndReason::Logout => LoginSessionChange::LoggedOut,
        SessionEndReason::Revoked | SessionEndReason::Evicted | SessionEndReason::Invalidated => {
            LoginSessionChange::Revoked
        }
    };
    Event::LoginSession(LoginSessionEvent {
        change,
        login_session_id,
        user_id,
        end_reason: Some(end_reason_name(reason).to_owned()),
        expires_at,
        occurred_at: now,
    })
}

/// The stored name of an end reason.
pub(crate) fn end_reason_name(reason: SessionEndReason) -> &'static str {
    match reason {
        SessionEndReason::Logout => "logout",
        SessionEndReason::Revoked => "revoked",
        SessionEndReason::Evicted => "evicted",
        SessionEndReason::Invalidated => "invalidated",
        SessionEndReason::ExpiredIdle => "expired_idle",
        SessionEndReason::ExpiredAbsolute => "expired_absolute",
    }
}

/// Ends `log` if it has expired at `now`; returns the event if it did (and
/// this call was the one that ended it).
pub(crate) async fn expire_if_due(
    db: &impl ConnectionTrait,
    log: &session_log::Model,
    settings: &EffectiveSettings,
    now: DateTime<Utc>,
) -> AppResult<Option<Event>> {
    let due = deadline(log, settings);
    if now < due.at {
        return Ok(None);
    }
    let ended = end_login_session(db, due.at.min(now), log.id, due.reason).await?;
    Ok(ended.then(|| ended_event(log.id, log.user_id, due.reason, Some(due.at), now)))
}

/// Records the `EXPIRING_SOON` warning of `log` if it is due at `now` and
/// not yet given for its current deadline; returns the event if this call
/// was the one that recorded it (so two sweepers warn once between them).
pub(crate) async fn warn_if_due(
    db: &impl ConnectionTrait,
    log: &session_log::Model,
    settings: &EffectiveSettings,
    now: DateTime<Utc>,
) -> AppResult<Option<Event>> {
    let due = deadline(log, settings);
    if now < warning_at(due, settings) || now >= due.at || log.expiry_warned_for == Some(due.at) {
        return Ok(None);
    }
    let recorded = session_log::Entity::update_many()
        .col_expr(session_log::Column::ExpiryWarnedFor, Expr::value(due.at))
        .filter(session_log::Column::Id.eq(log.id))
        .filter(session_log::Column::LogoutAt.is_null())
        // Activity since it was read moves the deadline: no warning then.
        .filter(session_log::Column::LastSeenAt.eq(log.last_seen_at))
        .filter(
            Condition::any()
                .add(session_log::Column::ExpiryWarnedFor.is_null())
                .add(session_log::Column::ExpiryWarnedFor.ne(due.at)),
        )
        .exec(db)
        .await?;
    Ok(
        (recorded.rows_affected == 1).then_some(Event::LoginSession(LoginSessionEvent {
            change: LoginSessionChange::ExpiringSoon,
            login_session_id: log.id,
            user_id: log.user_id,
            end_reason: None,
            expires_at: Some(due.at),
            occurred_at: now,
        })),
    )
}

/// Makes room for a new login of `user_id` under `settings` (inside the
/// login's transaction, with the user's row locked): expires what has
/// expired, then invalidates every other login session when the settings
/// say so, or ends the oldest ones beyond the concurrent-session limit (or
/// refuses the login, by `policy`). Returns the events to publish.
pub(crate) async fn admit_login(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    account: &user::Model,
    settings: &EffectiveSettings,
    policy: ConcurrentSessionPolicy,
    now: DateTime<Utc>,
) -> AppResult<Vec<Event>> {
    let open = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(account.id))
        .filter(session_log::Column::LogoutAt.is_null())
        .order_by_asc(session_log::Column::LoginAt)
        .order_by_asc(session_log::Column::Id)
        .all(db)
        .await?;
    let mut events = Vec::new();
    let mut still_open = Vec::with_capacity(open.len());
    for log in open {
        // Each login session expires by the settings of the tenant it works in.
        let own = effective_for(db, cache, account, log.tenant_id).await?;
        match expire_if_due(db, &log, &own, now).await? {
            Some(event) => events.push(event),
            None => still_open.push(log),
        }
    }
    let (to_end, reason) = if settings.invalidate_all_sessions_on_login {
        (still_open.len(), SessionEndReason::Invalidated)
    } else {
        let limit = usize::try_from(settings.max_concurrent_sessions.max(1)).unwrap_or(1);
        let excess = (still_open.len() + 1).saturating_sub(limit);
        if excess > 0 && policy == ConcurrentSessionPolicy::Reject {
            return Err(AppError::Conflict(format!(
                "you already have {} active login sessions, the most allowed: log out on another device first",
                still_open.len()
            )));
        }
        (excess, SessionEndReason::Evicted)
    };
    for log in still_open.iter().take(to_end) {
        if end_login_session(db, now, log.id, reason).await? {
            events.push(ended_event(log.id, log.user_id, reason, None, now));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle: i32, absolute: i32) -> EffectiveSettings {
        EffectiveSettings {
            idle_timeout_minutes: idle,
            absolute_timeout_minutes: absolute,
            max_concurrent_sessions: 3,
            invalidate_all_sessions_on_login: false,
            session_warning_minutes: 2,
            is_shared_device_mode: false,
        }
    }

    fn log(login_at: DateTime<Utc>, last_seen_at: DateTime<Utc>) -> session_log::Model {
        session_log::Model {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            tenant_id: None,
            login_at,
            logout_at: None,
            last_seen_at,
            user_agent: None,
            ip_address: None,
            device_info: None,
            end_reason: None,
            expiry_warned_for: None,
            created_at: login_at,
            updated_at: login_at,
        }
    }

    #[test]
    fn the_earlier_of_idle_and_absolute_timeout_is_the_deadline() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let idle_first = deadline(&log(start, start + Duration::minutes(10)), &settings(30, 480));
        assert_eq!(idle_first.at, start + Duration::minutes(40));
        assert_eq!(idle_first.reason, SessionEndReason::ExpiredIdle);
        let absolute_first = deadline(&log(start, start + Duration::minutes(470)), &settings(30, 480));
        assert_eq!(absolute_first.at, start + Duration::minutes(480));
        assert_eq!(absolute_first.reason, SessionEndReason::ExpiredAbsolute);
        assert_eq!(
            warning_at(absolute_first, &settings(30, 480)),
            start + Duration::minutes(478)
        );
    }
}
