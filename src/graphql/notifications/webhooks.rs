//! Webhook endpoints of a tenant, for its administrators: registering,
//! changing, rotating secrets, test pings, the delivery log, redelivery.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::webhook_delivery::{self, DeliveryStatus};
use entity::{webhook_attempt, webhook_endpoint};
use uuid::Uuid;

use super::NotificationKind;
use crate::graphql::ContextExt;
use crate::graphql::paging::{decode_after, page_limit};
use crate::services::webhooks::egress::AddressPolicy;
use crate::services::webhooks::{self as service, EndpointUpdate, NewEndpoint};
use crate::unit_of_work::{Outcome, write};

fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Unlock => "UNLOCK",
    }
}

/// Where a tenant's notifications are delivered (signed as the Standard
/// Webhooks specification says).
pub struct WebhookEndpoint(webhook_endpoint::Model);

#[Object(serial)]
impl WebhookEndpoint {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// What it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The notification kinds it receives.
    async fn kinds(&self) -> Vec<NotificationKind> {
        service::kinds_of(&self.0)
            .iter()
            .filter_map(|kind| (kind == "UNLOCK").then_some(NotificationKind::Unlock))
            .collect()
    }
    /// Whether deliveries are made to it (they wait while it is disabled).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Until when the secret replaced by the last rotation still signs
    /// (beside the new one), if it does.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_expires_at
    }
    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its delivery log, newest first.
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries in this state.")] status: Option<WebhookDeliveryStatus>,
        #[graphql(desc = "Page size; defaults to the configured page size, at most the configured maximum.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<Uuid>, WebhookDelivery, EmptyFields, EmptyFields>> {
        let state = ctx.state()?;
        let limit = page_limit(first, &state.settings.graphql)?;
        let after: Option<Uuid> = decode_after(after)?;
        let (rows, more) =
            service::page_deliveries(&state.db, &self.0, status.map(Into::into), after, limit).await?;
        // Every attempt of the page at once.
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut attempts = service::attempts_of(&state.db, &ids).await?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(rows.into_iter().map(|row| {
            let attempts = attempts.remove(&row.id).unwrap_or_default();
            Edge::new(OpaqueCursor(row.id), WebhookDelivery { row, attempts })
        }));
        Ok(connection)
    }
}

/// Where a delivery is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt (or held back behind an earlier
    /// delivery of the same user that is still pending).
    Pending,
    /// The endpoint answered 2xx: never sent again unless redelivered.
    Succeeded,
    /// Given up after the configured number of attempts: redeliverable.
    Failed,
}

impl From<WebhookDeliveryStatus> for DeliveryStatus {
    fn from(status: WebhookDeliveryStatus) -> Self {
        match status {
            WebhookDeliveryStatus::Pending => Self::Pending,
            WebhookDeliveryStatus::Succeeded => Self::Succeeded,
            WebhookDeliveryStatus::Failed => Self::Failed,
        }
    }
}

impl From<DeliveryStatus> for WebhookDeliveryStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// What a delivery carries.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryKind {
    /// An unlock notification.
    Unlock,
    /// A test ping.
    Ping,
}

/// One attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// Which attempt (from 1, over redeliveries too).
    pub attempt: i32,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The status code answered, if any.
    pub status_code: Option<i32>,
    /// What went wrong, if it did.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i32,
}

/// One notification for one endpoint, with its attempts.
pub struct WebhookDelivery {
    row: webhook_delivery::Model,
    attempts: Vec<webhook_attempt::Model>,
}

impl WebhookDelivery {
    async fn load(ctx: &Context<'_>, row: webhook_delivery::Model) -> Result<Self> {
        let attempts = service::attempts_of(&ctx.state()?.db, &[row.id])
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        Ok(Self { row, attempts })
    }
}

#[Object(serial)]
impl WebhookDelivery {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.row.id
    }
    /// The endpoint.
    async fn endpoint_id(&self) -> Uuid {
        self.row.endpoint_id
    }
    /// Its `webhook-id` header: the notification's `eventId` (the same on
    /// every attempt and redelivery: receivers deduplicate on it).
    async fn webhook_id(&self) -> &str {
        &self.row.message_id
    }
    /// What it carries.
    async fn kind(&self) -> WebhookDeliveryKind {
        if self.row.kind == service::PING {
            WebhookDeliveryKind::Ping
        } else {
            WebhookDeliveryKind::Unlock
        }
    }
    /// Where it is.
    async fn status(&self) -> WebhookDeliveryStatus {
        self.row.status.into()
    }
    /// Attempts since it was queued (or last redelivered).
    async fn attempt_count(&self) -> i32 {
        self.row.attempts
    }
    /// When it is attempted next (pending only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.row.next_attempt_at
    }
    /// The status code of the last attempt, if it got an answer.
    async fn last_status_code(&self) -> Option<i32> {
        self.row.last_status_code
    }
    /// What went wrong with the last attempt, if it did.
    async fn last_error(&self) -> Option<&str> {
        self.row.last_error.as_deref()
    }
    /// The body sent (the same bytes on every attempt).
    async fn payload(&self) -> &str {
        &self.row.payload
    }
    /// When it was queued.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// When it succeeded or was given up.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.row.completed_at
    }
    /// Its attempts, oldest first (the latest 50).
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.attempts
            .iter()
            .map(|attempt| WebhookAttempt {
                attempt: attempt.attempt,
                attempted_at: attempt.attempted_at,
                status_code: attempt.status_code,
                error: attempt.error.clone(),
                duration_ms: attempt.duration_ms,
            })
            .collect()
    }
}

/// An endpoint with its signing secret: shown only when made.
pub struct WebhookSecret {
    endpoint: webhook_endpoint::Model,
    secret: String,
}

#[Object(serial)]
impl WebhookSecret {
    /// The endpoint.
    async fn endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint(self.endpoint.clone())
    }
    /// The signing secret (`whsec_` and base64 of the key): verify each
    /// delivery's `webhook-signature` with it. It is not shown again.
    async fn secret(&self) -> &str {
        &self.secret
    }
}

/// A webhook endpoint to register.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST deliveries: an http(s) URL whose addresses are public
    /// (or in `webhooks.allowed_networks`).
    pub url: String,
    /// What it is for (at most 255 characters).
    pub description: Option<String>,
    /// Which notifications it receives; all kinds when omitted.
    pub kinds: Option<Vec<NotificationKind>>,
    /// Deliver to it from now on. Default true.
    pub enabled: Option<bool>,
}

/// Changes to a webhook endpoint; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// New URL.
    pub url: Option<String>,
    /// New description (empty clears it).
    pub description: Option<String>,
    /// New kinds.
    pub kinds: Option<Vec<NotificationKind>>,
    /// Deliver to it, or hold its deliveries.
    pub enabled: Option<bool>,
}

fn kind_names(kinds: Option<Vec<NotificationKind>>) -> Option<Vec<String>> {
    kinds.map(|kinds| kinds.into_iter().map(|kind| kind_name(kind).to_owned()).collect())
}

/// Webhook queries (administrators of the active tenant).
#[derive(Default)]
pub struct WebhooksQuery;

#[Object(serial)]
impl WebhooksQuery {
    /// The webhook endpoints of the active tenant, oldest first.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        let rows = service::list_endpoints(&ctx.state()?.db, &ctx.scope()?).await?;
        Ok(rows.into_iter().map(WebhookEndpoint).collect())
    }

    /// One webhook endpoint of the active tenant.
    async fn webhook_endpoint(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookEndpoint> {
        Ok(WebhookEndpoint(
            service::find_endpoint(&ctx.state()?.db, &ctx.scope()?, id).await?,
        ))
    }

    /// One delivery to an endpoint of the active tenant, with its attempts.
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookDelivery> {
        let row = service::find_delivery(&ctx.state()?.db, &ctx.scope()?, id).await?;
        WebhookDelivery::load(ctx, row).await
    }
}

/// Webhook mutations (administrators of the active tenant).
#[derive(Default)]
pub struct WebhooksMutation;

#[Object(serial)]
impl WebhooksMutation {
    /// Registers a webhook endpoint; answers with its signing secret, which
    /// is shown only now.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<WebhookSecret> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let policy = AddressPolicy::new(&state.settings.webhooks.allowed_networks);
        let now = state.clock.now();
        let input = NewEndpoint {
            url: input.url,
            description: input.description,
            kinds: kind_names(input.kinds),
            enabled: input.enabled,
        };
        let (endpoint, secret) = write(state, async |txn| {
            Ok(Outcome::quiet(
                service::create_endpoint(txn, &scope, &policy, input, now).await?,
            ))
        })
        .await?;
        Ok(WebhookSecret { endpoint, secret })
    }

    /// Changes a webhook endpoint.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let policy = AddressPolicy::new(&state.settings.webhooks.allowed_networks);
        let now = state.clock.now();
        let update = EndpointUpdate {
            url: input.url,
            description: input.description,
            kinds: kind_names(input.kinds),
            enabled: input.enabled,
        };
        let endpoint = write(state, async |txn| {
            Ok(service::update_endpoint(txn, &scope, &policy, id, update, now)
                .await?
                .into())
        })
        .await?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Deletes a webhook endpoint with its delivery log. Returns its id.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        Ok(write(state, async |txn| {
            Ok(Outcome::quiet(service::delete_endpoint(txn, &scope, id).await?))
        })
        .await?)
    }

    /// Gives an endpoint a new signing secret. The old one keeps signing
    /// beside it for `overlapMinutes` (each delivery then carries both
    /// signatures), so that the receiver can switch without missing one.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(
            default = 1440,
            desc = "How long the old secret still signs, in minutes (0 to 10080)."
        )]
        overlap_minutes: i32,
    ) -> Result<WebhookSecret> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let (endpoint, secret) = write(state, async |txn| {
            Ok(Outcome::quiet(
                service::rotate_secret(txn, &scope, id, i64::from(overlap_minutes), now).await?,
            ))
        })
        .await?;
        Ok(WebhookSecret { endpoint, secret })
    }

    /// Sends a test delivery (`webhook.ping`) to an endpoint, enabled or not.
    async fn ping_webhook_endpoint(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookDelivery> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(service::ping(txn, &scope, id, now).await?.into())
        })
        .await?;
        Ok(WebhookDelivery {
            row,
            attempts: Vec::new(),
        })
    }

    /// Queues a failed delivery again, with a fresh set of attempts (same
    /// `webhookId`, same body).
    async fn redeliver_webhook_delivery(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookDelivery> {
        let state = ctx.state()?;
        let scope = ctx.scope()?;
        let now = state.clock.now();
        let row = write(state, async |txn| {
            Ok(service::redeliver(txn, &scope, id, now).await?.into())
        })
        .await?;
        WebhookDelivery::load(ctx, row).await
    }
}
