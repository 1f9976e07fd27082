//! Delivering webhooks, at least once, from every instance: each instance
//! leases the deliveries that are due (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so that each is attempted by one instance at a time; an
//! instance that dies mid-attempt leaves a lease that lapses), POSTs them,
//! and records each attempt. A delivery is due when its time has come, its
//! endpoint is enabled (a ping goes regardless), and no earlier delivery of
//! the same endpoint and supervised user is still pending: they go in event
//! order, and a failing one holds back the later ones until it succeeds or
//! is given up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use chrono::{DateTime, SubsecRound, Utc};
use entity::webhook_delivery::{self, DeliveryStatus};
use entity::{webhook_attempt, webhook_endpoint};
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, Set, Statement,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::egress::{AddressPolicy, GuardedResolver, REFUSED_ADDRESS};
use super::signing::signature_header;
use crate::config::WebhookSettings;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::state::AppState;
use crate::unit_of_work::{self, Outcome};

/// Longest error text kept for an attempt.
const MAX_ERROR: usize = 500;

/// How long past its timeout an attempt keeps its lease.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Wakes this instance's delivery when deliveries were queued, on any
/// instance: by a notification, or announced as `WEBHOOK_QUEUED`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryWake(Arc<Notify>);

impl DeliveryWake {
    /// Wakes on every event delivered to this instance that queued
    /// deliveries (in the transaction that logged it).
    pub(crate) fn listen(&self, events: &crate::events::EventBus) {
        let notify = self.0.clone();
        events.observe(move |event| {
            if matches!(event, Event::Unlock(_) | Event::WebhookQueued(_)) {
                notify.notify_one();
            }
        });
    }
}

/// The wait before attempt `attempt + 1`, after `attempt` failed: doubling
/// from the initial backoff up to the longest, plus up to a quarter more
/// at random so that receivers coming back are not hit all at once.
pub(crate) fn backoff(settings: &WebhookSettings, attempt: i32, jitter: f64) -> chrono::Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
    let base = settings
        .initial_backoff_secs
        .saturating_mul(1_i64 << exponent)
        .min(settings.max_backoff_secs);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "seconds of a backoff, at most an hour and a quarter"
    )]
    let jittered = (base as f64 * (1.0 + jitter.clamp(0.0, 1.0) / 4.0)).round() as i64;
    chrono::Duration::seconds(jittered)
}

/// A random fraction in `[0, 1)`.
fn jitter() -> f64 {
    f64::from(OsRng.next_u32()) / (f64::from(u32::MAX) + 1.0)
}

/// Prepares this instance's delivery: reads when the first delivery is
/// due (before the application serves, so that nothing runs meanwhile
/// until one is).
pub(crate) async fn prepare(state: AppState) -> AppResult<Courier> {
    let settings = state.settings.webhooks.clone();
    let policy = Arc::new(AddressPolicy::new(&settings.allowed_networks));
    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve and connect past the
        // address policy.
        .no_proxy()
        .timeout(Duration::from_secs(settings.timeout_secs))
        .user_agent(concat!("session-manager-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(AppError::internal)?;
    let first = next_due(&state.db).await?;
    Ok(Courier {
        state,
        client,
        policy,
        settings,
        first,
    })
}

/// This instance's webhook delivery, prepared.
pub(crate) struct Courier {
    state: AppState,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    settings: WebhookSettings,
    first: Option<DateTime<Utc>>,
}

/// What one attempt came to.
struct Answer {
    status_code: Option<i32>,
    error: Option<String>,
    duration_ms: i32,
}

impl Answer {
    fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|code| (200..300).contains(&code))
    }
}

impl Courier {
    /// Delivers until aborted.
    pub(crate) fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut next = self.first;
        loop {
            let timer = async {
                match next {
                    Some(at) => self.state.clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.state.webhook_wake.0.notified() => {}
                () = timer => {}
            }
            self.deliver_due().await;
            next = match next_due(&self.state.db).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::error!(error = ?error, "could not read the next webhook delivery; retrying");
                    Some(self.state.clock.now() + chrono::Duration::seconds(1))
                }
            };
        }
    }

    /// Leases and attempts what is due, batch after batch, until nothing is.
    async fn deliver_due(&self) {
        loop {
            let now = self.state.clock.now();
            // Whole milliseconds: the lease is compared with what the
            // database kept of it.
            let lease = (now
                + chrono::Duration::from_std(Duration::from_secs(self.settings.timeout_secs) + LEASE_MARGIN)
                    .unwrap_or_default())
            .trunc_subsecs(3);
            match lease_due(&self.state, now, lease, self.settings.concurrency).await {
                Ok(batch) if !batch.is_empty() => {
                    join_all(batch.into_iter().map(|delivery| self.deliver(delivery, lease))).await;
                }
                Ok(_) => return,
                Err(error) => {
                    tracing::error!(error = ?error, "could not lease webhook deliveries; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return;
                }
            }
        }
    }

    /// Attempts one leased delivery and records the attempt.
    async fn deliver(&self, delivery: webhook_delivery::Model, lease: DateTime<Utc>) {
        let endpoint = match webhook_endpoint::Entity::find_by_id(delivery.endpoint_id)
            .one(&self.state.db)
            .await
        {
            Ok(Some(endpoint)) => endpoint,
            // Deleted meanwhile: its deliveries went with it.
            Ok(None) => return,
            Err(error) => {
                tracing::error!(error = ?error, "could not read a webhook endpoint");
                return;
            }
        };
        let answer = self.attempt(&delivery, &endpoint).await;
        let now = self.state.clock.now();
        if let Err(error) = record(&self.state, &delivery, lease, &answer, now).await {
            // The lease lapses and the delivery is attempted again: at least once.
            tracing::error!(error = ?error, delivery_id = %delivery.id, "could not record a webhook attempt");
        }
        if answer.succeeded() {
            tracing::debug!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, "webhook delivered");
        } else {
            tracing::info!(
                delivery_id = %delivery.id,
                endpoint_id = %endpoint.id,
                status = ?answer.status_code,
                attempt = delivery.attempts + 1,
                "webhook attempt failed"
            );
        }
    }

    async fn attempt(
        &self,
        delivery: &webhook_delivery::Model,
        endpoint: &webhook_endpoint::Model,
    ) -> Answer {
        let started = Instant::now();
        let elapsed = || i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let failed = |error: String| Answer {
            status_code: None,
            error: Some(truncate(error)),
            duration_ms: elapsed(),
        };
        // Checked again at each attempt: the allow-list may have changed.
        let url = match self.policy.check_url("url", &endpoint.url) {
            Ok(url) => url,
            Err(error) => return failed(error.message()),
        };
        let now = self.state.clock.now();
        let timestamp = now.timestamp();
        let mut secrets = vec![endpoint.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_expires_at)
            && until > now
        {
            secrets.push(previous);
        }
        let signature = match signature_header(&secrets, &delivery.message_id, timestamp, &delivery.payload) {
            Ok(signature) => signature,
            Err(error) => return failed(error.message()),
        };
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let code = i32::from(response.status().as_u16());
                let error =
                    (!response.status().is_success()).then(|| format!("answered {}", response.status()));
                Answer {
                    status_code: Some(code),
                    error,
                    duration_ms: elapsed(),
                }
            }
            Err(error) => failed(describe(&error, self.settings.timeout_secs)),
        }
    }
}

/// What went wrong with a request, as an administrator can act on it.
fn describe(error: &reqwest::Error, timeout_secs: u64) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return REFUSED_ADDRESS.to_owned();
        }
        source = cause.source();
    }
    if error.is_timeout() {
        format!("no answer within {timeout_secs} s")
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The condition of a due delivery `d` (shared by leasing and waiting).
const DUE: &str = "d.status = 'pending'
      AND (d.kind = 'PING' OR EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.enabled))
      AND (d.ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key
              AND p.status = 'pending' AND p.sequence < d.sequence))";

/// Leases at most `limit` due deliveries until `lease`, oldest first.
async fn lease_due(
    state: &AppState,
    now: DateTime<Utc>,
    lease: DateTime<Utc>,
    limit: usize,
) -> AppResult<Vec<webhook_delivery::Model>> {
    let backend = state.db.get_database_backend();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = match backend {
        DatabaseBackend::Postgres => format!(
            "UPDATE webhook_deliveries SET leased_until = $1 WHERE id IN (
                SELECT d.id FROM webhook_deliveries d
                WHERE {DUE} AND d.next_attempt_at <= $2 AND (d.leased_until IS NULL OR d.leased_until <= $2)
                ORDER BY d.next_attempt_at, d.sequence LIMIT $3
                FOR UPDATE SKIP LOCKED)
             RETURNING *"
        ),
        // One writer: the update is the lease.
        _ => format!(
            "UPDATE webhook_deliveries SET leased_until = ?1 WHERE id IN (
                SELECT d.id FROM webhook_deliveries d
                WHERE {DUE} AND d.next_attempt_at <= ?2 AND (d.leased_until IS NULL OR d.leased_until <= ?2)
                ORDER BY d.next_attempt_at, d.sequence LIMIT ?3)
             RETURNING *"
        ),
    };
    let statement = Statement::from_sql_and_values(backend, sql, [lease.into(), now.into(), limit.into()]);
    unit_of_work::write(state, async |txn| {
        let leased = webhook_delivery::Model::find_by_statement(statement)
            .all(txn)
            .await?;
        Ok(Outcome::quiet(leased))
    })
    .await
}

/// When a delivery is due next: the earliest next attempt of a delivery
/// nothing holds back, or the end of a lease another attempt holds.
async fn next_due(db: &impl ConnectionTrait) -> AppResult<Option<DateTime<Utc>>> {
    #[derive(FromQueryResult)]
    struct Next {
        due: Option<DateTime<Utc>>,
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT MIN(CASE WHEN d.leased_until IS NOT NULL AND d.leased_until > d.next_attempt_at
                         THEN d.leased_until ELSE d.next_attempt_at END) AS due
         FROM webhook_deliveries d WHERE {DUE}"
    );
    let next = Next::find_by_statement(Statement::from_string(backend, sql))
        .one(db)
        .await?;
    Ok(next.and_then(|next| next.due))
}

/// Records an attempt made under `lease`: succeeded, given up, or pending
/// with its next time. A lease taken over meanwhile (it lapsed) keeps the
/// attempt in the log but leaves the delivery to its new holder.
async fn record(
    state: &AppState,
    delivery: &webhook_delivery::Model,
    lease: DateTime<Utc>,
    answer: &Answer,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let settings = &state.settings.webhooks;
    unit_of_work::write(state, async |txn| {
        record_in(txn, settings, delivery, lease, answer, now).await?;
        Ok(Outcome::quiet(()))
    })
    .await
}

async fn record_in(
    txn: &impl ConnectionTrait,
    settings: &WebhookSettings,
    delivery: &webhook_delivery::Model,
    lease: DateTime<Utc>,
    answer: &Answer,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let made = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.eq(delivery.id))
        .count(txn)
        .await?;
    webhook_attempt::ActiveModel {
        delivery_id: Set(delivery.id),
        attempt: Set(i32::try_from(made + 1).unwrap_or(i32::MAX)),
        attempted_at: Set(now),
        status_code: Set(answer.status_code),
        error: Set(answer.error.clone()),
        duration_ms: Set(answer.duration_ms),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let attempts = delivery.attempts + 1;
    let (status, next, completed) = if answer.succeeded() {
        (DeliveryStatus::Succeeded, None, Some(now))
    } else if attempts >= settings.max_attempts {
        (DeliveryStatus::Failed, None, Some(now))
    } else {
        let next = now + backoff(settings, attempts, jitter());
        (DeliveryStatus::Pending, Some(next), None)
    };
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, Expr::value(status))
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            webhook_delivery::Column::LeasedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            webhook_delivery::Column::LastStatusCode,
            Expr::value(answer.status_code),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(answer.error.clone()),
        )
        .col_expr(webhook_delivery::Column::CompletedAt, Expr::value(completed))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(delivery.id))
        .filter(webhook_delivery::Column::LeasedUntil.eq(lease))
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_longest_with_at_most_a_quarter_of_jitter() {
        let settings = WebhookSettings {
            initial_backoff_secs: 10,
            max_backoff_secs: 60,
            ..WebhookSettings::default()
        };
        let seconds = |attempt, jitter| backoff(&settings, attempt, jitter).num_seconds();
        assert_eq!([seconds(1, 0.0), seconds(2, 0.0), seconds(3, 0.0)], [10, 20, 40]);
        assert_eq!(seconds(4, 0.0), 60, "capped");
        assert_eq!(seconds(40, 0.0), 60, "no overflow");
        assert_eq!(seconds(1, 0.999), 12, "a quarter more at most");
        assert!((0..1000).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }
}
