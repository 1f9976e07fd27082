//! The durable event log (`events`): every announced event, kept for the
//! retention period, read in order from a cursor.
//!
//! Ids become visible in commit order. A sequence hands out ids at insert,
//! not at commit, so two transactions could commit their ids out of order
//! and a reader that has reached N would skip a lower id committed later.
//! On PostgreSQL every append therefore takes a transaction-scoped advisory
//! lock first: appends queue behind each other until their transaction
//! ends, so the order of ids is the order of commits. SQLite has a single
//! writer, which gives the same order.

use chrono::{DateTime, Duration, Utc};
use entity::{event, event_log_state};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events::{Event, SettingsScope};

/// Key of the advisory lock that orders appends (PostgreSQL).
const APPEND_LOCK_KEY: i64 = 0x5e55_1011_0002;

/// The stored topic of `event`.
pub(crate) fn topic(event: &Event) -> &'static str {
    match event {
        Event::Session(_) => "SESSION",
        Event::Unlock(_) => "UNLOCK",
        Event::LockState(_) => "LOCK_STATE",
        Event::WebhookQueued(_) => "WEBHOOK",
        Event::SettingsChanged(_) => "SETTINGS_CHANGED",
        Event::LoginSession(_) => "LOGIN_SESSION",
        Event::Account(_) => "ACCOUNT",
        Event::Membership(_) => "MEMBERSHIP",
        Event::GuardianLink(_) => "GUARDIAN_LINK",
        Event::Organisation(_) => "ORGANISATION",
    }
}

/// The tenant `event` concerns, when it names one.
pub(crate) fn tenant_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::Session(session) => Some(session.tenant_id),
        Event::Unlock(unlock) => Some(unlock.tenant_id),
        Event::SettingsChanged(SettingsScope::Tenant(tenant_id)) => Some(*tenant_id),
        Event::Membership(membership) => Some(membership.tenant_id),
        Event::GuardianLink(link) => Some(link.tenant_id),
        Event::Organisation(organisation) => Some(organisation.tenant_id),
        Event::WebhookQueued(queued) => Some(queued.tenant_id),
        // A lock state spans every tenant of its user.
        Event::SettingsChanged(_) | Event::LoginSession(_) | Event::Account(_) | Event::LockState(_) => None,
    }
}

/// Appends `events` inside `txn` (they become visible when it commits, and
/// vanish with it if it rolls back) and returns their ids, in order.
pub async fn append(txn: &DatabaseTransaction, now: DateTime<Utc>, events: &[Event]) -> AppResult<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [APPEND_LOCK_KEY.into()],
        ))
        .await?;
    }
    let mut ids = Vec::with_capacity(events.len());
    for event in events {
        let payload = serde_json::to_value(event).map_err(AppError::internal)?;
        let row = event::ActiveModel {
            topic: Set(topic(event).to_owned()),
            tenant_id: Set(tenant_of(event)),
            payload: Set(payload),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        ids.push(row.id);
    }
    Ok(ids)
}

/// Which rows a read of the log wants (a replay reads only what its
/// subscription could deliver).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogFilter {
    /// Only these topics (all when `None`).
    pub(crate) topics: Option<&'static [&'static str]>,
    /// Only events of this tenant (all when `None`).
    pub(crate) tenant_id: Option<Uuid>,
}

/// At most `limit` rows after the cursor `after`, oldest first, each with
/// its event, or `None` when this build cannot decode it (an event kind of
/// a newer version): delivery skips such a row instead of stopping at it.
pub(crate) async fn read_rows_after(
    db: &impl ConnectionTrait,
    after: i64,
    limit: u64,
    only: &LogFilter,
) -> AppResult<Vec<(i64, Option<Event>)>> {
    let mut query = event::Entity::find().filter(event::Column::Id.gt(after));
    if let Some(topics) = only.topics {
        query = query.filter(event::Column::Topic.is_in(topics.iter().copied()));
    }
    if let Some(tenant_id) = only.tenant_id {
        query = query.filter(event::Column::TenantId.eq(tenant_id));
    }
    Ok(query
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|row| match serde_json::from_value(row.payload) {
            Ok(event) => (row.id, Some(event)),
            Err(error) => {
                tracing::error!(id = row.id, topic = %row.topic, %error, "skipping an event this version cannot read");
                (row.id, None)
            }
        })
        .collect())
}

/// At most `limit` events after the cursor `after`, oldest first (an
/// undecodable row is an error here; delivery uses [`read_rows_after`]).
pub async fn read_after(db: &impl ConnectionTrait, after: i64, limit: u64) -> AppResult<Vec<(i64, Event)>> {
    read_rows_after(db, after, limit, &LogFilter::default())
        .await?
        .into_iter()
        .map(|(id, event)| {
            event
                .map(|event| (id, event))
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("event {id} cannot be decoded")))
        })
        .collect()
}

/// The newest id, if the log holds any.
pub async fn last_id(db: &impl ConnectionTrait) -> AppResult<Option<i64>> {
    Ok(event::Entity::find()
        .order_by_desc(event::Column::Id)
        .one(db)
        .await?
        .map(|row| row.id))
}

/// The oldest id still retained, if any (ids have gaps: whether a cursor
/// has lost events is for [`swept_through`] to say).
pub async fn first_id(db: &impl ConnectionTrait) -> AppResult<Option<i64>> {
    Ok(event::Entity::find()
        .order_by_asc(event::Column::Id)
        .one(db)
        .await?
        .map(|row| row.id))
}

/// Every event with an id up to this one has been swept by retention: a
/// cursor below it has missed events.
pub async fn swept_through(db: &impl ConnectionTrait) -> AppResult<i64> {
    Ok(event_log_state::Entity::find_by_id(1_i16)
        .one(db)
        .await?
        .map_or(0, |state| state.swept_through))
}

/// Deletes the events older than `retention` and records how far it swept,
/// in one transaction; returns how many it deleted.
///
/// It deletes the old *prefix* of the log, by id: up to the event before the
/// oldest one still within retention. An event whose `created_at` is off
/// (another instance's clock) therefore never takes newer events with it,
/// and everything at or below the recorded horizon is gone while everything
/// above it is kept.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>, retention: Duration) -> AppResult<u64> {
    let txn = db.begin().await?;
    let cutoff = now - retention;
    let oldest_kept = event::Entity::find()
        .filter(event::Column::CreatedAt.gte(cutoff))
        .order_by_asc(event::Column::Id)
        .one(&txn)
        .await?;
    let horizon = match oldest_kept {
        Some(row) => row.id - 1,
        None => match event::Entity::find()
            .order_by_desc(event::Column::Id)
            .one(&txn)
            .await?
        {
            Some(row) => row.id,
            None => return Ok(0),
        },
    };
    if horizon <= swept_through(&txn).await? {
        return Ok(0);
    }
    let deleted = event::Entity::delete_many()
        .filter(event::Column::Id.lte(horizon))
        .exec(&txn)
        .await?
        .rows_affected;
    event_log_state::Entity::update_many()
        .col_expr(event_log_state::Column::SweptThrough, Expr::value(horizon))
        .filter(event_log_state::Column::Id.eq(1_i16))
        .filter(event_log_state::Column::SweptThrough.lt(horizon))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_is_kept_as_data() {
        let tenant = Uuid::now_v7();
        let settings = Event::SettingsChanged(SettingsScope::Tenant(tenant));
        assert_eq!(topic(&settings), "SETTINGS_CHANGED");
        assert_eq!(tenant_of(&settings), Some(tenant));
        assert_eq!(tenant_of(&Event::SettingsChanged(SettingsScope::System)), None);
    }
}
