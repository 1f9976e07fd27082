//! Webhooks: a tenant's administrators register endpoints; every
//! notification of the tenant (see `graphql::notifications`) becomes one
//! delivery per endpoint that asked for its kind, created in the
//! transaction that logged it (so none is lost), with its own copy of the
//! body, and delivered at least once by [`delivery`]: signed as the
//! Standard Webhooks specification says, retried with exponential backoff
//! and jitter, given up after the configured number of attempts, never
//! resent after a recorded 2xx unless an administrator redelivers it, and
//! in event order per endpoint and supervised user (a failing delivery
//! holds back that user's later ones for that endpoint until it succeeds
//! or is given up).

pub(crate) mod delivery;
pub(crate) mod egress;
pub(crate) mod signing;

use chrono::{DateTime, Duration, Utc};
use entity::webhook_delivery::{self, DeliveryStatus};
use entity::{webhook_attempt, webhook_endpoint};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events::{Event, WebhookQueuedEvent, encode_cursor};
use crate::services::scope::Scope;
use crate::services::validation::required_name;
use egress::AddressPolicy;

/// The notification kinds an endpoint may ask for.
pub const KINDS: &[&str] = &["UNLOCK"];

/// The kind of a test delivery.
pub const PING: &str = "PING";

/// Most endpoints of one tenant.
const MAX_ENDPOINTS: u64 = 20;

/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 255;

/// Longest secret overlap during a rotation, in minutes (a week).
const MAX_OVERLAP_MINUTES: i64 = 7 * 24 * 60;

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where to deliver.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Which kinds; every kind when `None`.
    pub kinds: Option<Vec<String>>,
    /// Whether to deliver to it now (default true).
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description (empty clears it).
    pub description: Option<String>,
    /// New kinds.
    pub kinds: Option<Vec<String>>,
    /// Deliver to it or not (deliveries wait while it is disabled).
    pub enabled: Option<bool>,
}

/// The kinds of an endpoint, read from its row.
pub fn kinds_of(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_value(endpoint.kinds.clone()).unwrap_or_default()
}

fn checked_kinds(kinds: Option<Vec<String>>) -> AppResult<serde_json::Value> {
    let kinds = kinds.unwrap_or_else(|| KINDS.iter().map(|kind| (*kind).to_owned()).collect());
    if kinds.is_empty() {
        return Err(AppError::bad_input("kinds", "name at least one kind"));
    }
    let mut unique: Vec<String> = Vec::new();
    for kind in kinds {
        if !KINDS.contains(&kind.as_str()) {
            return Err(AppError::bad_input(
                "kinds",
                format!("`{kind}` is not a notification kind ({})", KINDS.join(", ")),
            ));
        }
        if !unique.contains(&kind) {
            unique.push(kind);
        }
    }
    Ok(json!(unique))
}

fn checked_description(description: Option<String>) -> AppResult<Option<String>> {
    match description.map(|text| text.trim().to_owned()) {
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => required_name("description", &text, MAX_DESCRIPTION).map(Some),
        None => Ok(None),
    }
}

/// An endpoint of the viewer's tenant (administrators only).
pub async fn find_endpoint(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
) -> AppResult<webhook_endpoint::Model> {
    scope.require_tenant_admin()?;
    webhook_endpoint::Entity::find_by_id(id)
        .filter(webhook_endpoint::Column::TenantId.eq(scope.tenant_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "webhook endpoint",
        })
}

/// The endpoints of the viewer's tenant, oldest first (administrators only).
pub async fn list_endpoints(
    db: &impl ConnectionTrait,
    scope: &Scope,
) -> AppResult<Vec<webhook_endpoint::Model>> {
    scope.require_tenant_admin()?;
    Ok(webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::TenantId.eq(scope.tenant_id))
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await?)
}

/// Registers an endpoint; returns it with its signing secret (shown once).
pub(crate) async fn create_endpoint(
    db: &impl ConnectionTrait,
    scope: &Scope,
    policy: &AddressPolicy,
    input: NewEndpoint,
    now: DateTime<Utc>,
) -> AppResult<(webhook_endpoint::Model, String)> {
    scope.require_tenant_admin()?;
    let url = policy.check_url("url", &input.url)?;
    let existing = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::TenantId.eq(scope.tenant_id))
        .count(db)
        .await?;
    if existing >= MAX_ENDPOINTS {
        return Err(AppError::Conflict(format!(
            "a tenant has at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let secret = signing::generate_secret();
    let endpoint = webhook_endpoint::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        url: Set(url.to_string()),
        description: Set(checked_description(input.description)?),
        kinds: Set(checked_kinds(input.kinds)?),
        secret: Set(secret.clone()),
        enabled: Set(input.enabled.unwrap_or(true)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((endpoint, secret))
}

/// The event that wakes every instance's delivery for `endpoint`.
fn queued(tenant_id: Uuid, endpoint_id: Uuid, now: DateTime<Utc>) -> Event {
    Event::WebhookQueued(WebhookQueuedEvent {
        tenant_id,
        endpoint_id,
        occurred_at: now,
    })
}

/// Changes an endpoint (announced: enabled again, what waited is due).
pub(crate) async fn update_endpoint(
    db: &impl ConnectionTrait,
    scope: &Scope,
    policy: &AddressPolicy,
    id: Uuid,
    update: EndpointUpdate,
    now: DateTime<Utc>,
) -> AppResult<(webhook_endpoint::Model, Vec<Event>)> {
    let endpoint = find_endpoint(db, scope, id).await?;
    let mut model: webhook_endpoint::ActiveModel = endpoint.into();
    if let Some(url) = update.url {
        model.url = Set(policy.check_url("url", &url)?.to_string());
    }
    if let Some(description) = update.description {
        model.description = Set(checked_description(Some(description))?);
    }
    if let Some(kinds) = update.kinds {
        model.kinds = Set(checked_kinds(Some(kinds))?);
    }
    if let Some(enabled) = update.enabled {
        model.enabled = Set(enabled);
    }
    model.updated_at = Set(now);
    let endpoint = model.update(db).await?;
    let events = vec![queued(endpoint.tenant_id, endpoint.id, now)];
    Ok((endpoint, events))
}

/// Deletes an endpoint with its delivery log; returns its id.
pub async fn delete_endpoint(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<Uuid> {
    let endpoint = find_endpoint(db, scope, id).await?;
    webhook_endpoint::Entity::delete_by_id(endpoint.id)
        .exec(db)
        .await?;
    Ok(endpoint.id)
}

/// Gives an endpoint a new secret; the old one keeps signing (beside it)
/// for `overlap_minutes`, so that the receiver can switch meanwhile.
/// Returns the endpoint and the new secret (shown once).
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    overlap_minutes: i64,
    now: DateTime<Utc>,
) -> AppResult<(webhook_endpoint::Model, String)> {
    if !(0..=MAX_OVERLAP_MINUTES).contains(&overlap_minutes) {
        return Err(AppError::bad_input(
            "overlapMinutes",
            format!("must be between 0 and {MAX_OVERLAP_MINUTES}"),
        ));
    }
    let endpoint = find_endpoint(db, scope, id).await?;
    let secret = signing::generate_secret();
    let mut model: webhook_endpoint::ActiveModel = endpoint.clone().into();
    if overlap_minutes > 0 {
        model.previous_secret = Set(Some(endpoint.secret));
        model.previous_secret_expires_at = Set(Some(now + Duration::minutes(overlap_minutes)));
    } else {
        model.previous_secret = Set(None);
        model.previous_secret_expires_at = Set(None);
    }
    model.secret = Set(secret.clone());
    model.updated_at = Set(now);
    Ok((model.update(db).await?, secret))
}

/// The body of a delivery: `{"type", "timestamp", "data"}`, as the
/// Standard Webhooks specification suggests.
fn body(kind: &str, timestamp: DateTime<Utc>, data: &serde_json::Value) -> AppResult<String> {
    let kind = match kind {
        PING => "webhook.ping",
        _ => "session.unlocked",
    };
    serde_json::to_string(&json!({ "type": kind, "timestamp": timestamp, "data": data }))
        .map_err(AppError::internal)
}

/// Queues a test delivery to an endpoint (enabled or not: a ping is how an
/// administrator checks it before enabling it).
pub async fn ping(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(webhook_delivery::Model, Vec<Event>)> {
    let endpoint = find_endpoint(db, scope, id).await?;
    let pending = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id))
        .filter(webhook_delivery::Column::Kind.eq(PING))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .count(db)
        .await?;
    if pending > 0 {
        return Err(AppError::Conflict(
            "a ping to this endpoint is still pending: see its delivery log".to_owned(),
        ));
    }
    let delivery_id = Uuid::now_v7();
    let payload = body(
        PING,
        now,
        &json!({ "endpointId": endpoint.id, "tenantId": endpoint.tenant_id }),
    )?;
    let delivery = webhook_delivery::ActiveModel {
        id: Set(delivery_id),
        endpoint_id: Set(endpoint.id),
        tenant_id: Set(endpoint.tenant_id),
        message_id: Set(format!("ping_{}", delivery_id.simple())),
        kind: Set(PING.to_owned()),
        ordering_key: Set(None),
        sequence: Set(0),
        payload: Set(payload),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((delivery, vec![queued(endpoint.tenant_id, endpoint.id, now)]))
}

/// Queues a given-up delivery again, with a fresh set of attempts.
pub async fn redeliver(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(webhook_delivery::Model, Vec<Event>)> {
    let delivery = find_delivery(db, scope, id).await?;
    if delivery.status != DeliveryStatus::Failed {
        return Err(AppError::Conflict(format!(
            "only a failed delivery is redelivered; this one {}",
            match delivery.status {
                DeliveryStatus::Pending => "is still pending",
                _ => "succeeded",
            }
        )));
    }
    let mut model: webhook_delivery::ActiveModel = delivery.into();
    model.status = Set(DeliveryStatus::Pending);
    model.attempts = Set(0);
    model.next_attempt_at = Set(Some(now));
    model.leased_until = Set(None);
    model.completed_at = Set(None);
    model.updated_at = Set(now);
    let delivery = model.update(db).await?;
    let event = queued(delivery.tenant_id, delivery.endpoint_id, now);
    Ok((delivery, vec![event]))
}

/// A delivery of an endpoint of the viewer's tenant (administrators only).
pub async fn find_delivery(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
) -> AppResult<webhook_delivery::Model> {
    scope.require_tenant_admin()?;
    webhook_delivery::Entity::find_by_id(id)
        .filter(webhook_delivery::Column::TenantId.eq(scope.tenant_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "webhook delivery",
        })
}

/// A page of an endpoint's deliveries, newest first, after the delivery
/// `after`; and whether more follow.
pub async fn page_deliveries(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoint::Model,
    status: Option<DeliveryStatus>,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<(Vec<webhook_delivery::Model>, bool)> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id))
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit + 1);
    if let Some(status) = status {
        query = query.filter(webhook_delivery::Column::Status.eq(status));
    }
    if let Some(after) = after {
        query = query.filter(webhook_delivery::Column::Id.lt(after));
    }
    let mut rows = query.all(db).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// Most attempts shown per delivery (the latest; redeliveries add more).
pub const MAX_SHOWN_ATTEMPTS: usize = 50;

/// The attempts of deliveries, oldest first, the latest
/// [`MAX_SHOWN_ATTEMPTS`] of each.
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    delivery_ids: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, Vec<webhook_attempt::Model>>> {
    let mut by_delivery: std::collections::HashMap<Uuid, Vec<webhook_attempt::Model>> =
        std::collections::HashMap::new();
    for attempt in webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(delivery_ids.iter().copied()))
        .order_by_asc(webhook_attempt::Column::AttemptedAt)
        .order_by_asc(webhook_attempt::Column::Attempt)
        .all(db)
        .await?
    {
        by_delivery.entry(attempt.delivery_id).or_default().push(attempt);
    }
    for attempts in by_delivery.values_mut() {
        let extra = attempts.len().saturating_sub(MAX_SHOWN_ATTEMPTS);
        attempts.drain(..extra);
    }
    Ok(by_delivery)
}

/// Deletes the deliveries (and their attempts) that succeeded or were
/// given up before `before`; returns how many.
pub(crate) async fn sweep_log(db: &impl ConnectionTrait, before: DateTime<Utc>) -> AppResult<u64> {
    Ok(webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::Status.ne(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::CompletedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// Inside the transaction that logged them: one delivery per endpoint of
/// the tenant that asked for its kind, for each notification among the
/// logged events (a disabled endpoint's wait until it is enabled).
/// Returns how many it queued.
pub(crate) async fn enqueue(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    logged: &[(i64, &Event)],
) -> AppResult<usize> {
    let mut queued = 0;
    for (id, event) in logged {
        let Event::Unlock(unlock) = event else {
            continue;
        };
        let endpoints = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::TenantId.eq(unlock.tenant_id))
            .all(db)
            .await?;
        let message_id = encode_cursor(*id);
        let payload = body(
            "UNLOCK",
            unlock.occurred_at,
            &json!({
                "eventId": message_id,
                "kind": "UNLOCK",
                "tenantId": unlock.tenant_id,
                "sessionId": unlock.session_id,
                "userId": unlock.user_id,
                "guardianId": unlock.guardian_id,
                "message": unlock.message,
                "occurredAt": unlock.occurred_at,
            }),
        )?;
        for endpoint in endpoints
            .iter()
            .filter(|endpoint| kinds_of(endpoint).iter().any(|kind| kind == "UNLOCK"))
        {
            webhook_delivery::ActiveModel {
                endpoint_id: Set(endpoint.id),
                tenant_id: Set(endpoint.tenant_id),
                message_id: Set(message_id.clone()),
                kind: Set("UNLOCK".to_owned()),
                ordering_key: Set(Some(unlock.user_id)),
                sequence: Set(*id),
                payload: Set(payload.clone()),
                status: Set(DeliveryStatus::Pending),
                attempts: Set(0),
                next_attempt_at: Set(Some(now)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
            queued += 1;
        }
    }
    Ok(queued)
}
