//! The tenant context: switching, the default tenant, and the audit trail
//! of context changes (document 002).

use async_graphql::{Context, Enum, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::session_context_change::{self, ContextChangeEventType};
use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{Membership, Tenant, User};
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{TenantById, UserById};
use crate::graphql::login_sessions::Viewer;
use crate::services::tenant_context;

/// What changed the tenant context.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "the names are the event types of document 002"
)]
pub enum TenantContextEvent {
    /// The user switched tenant.
    SwitchTenant,
    /// The user chose a new default tenant.
    SetDefaultTenant,
    /// The default tenant was applied (at login, or when no context was set).
    ApplyDefaultTenant,
    /// Access to the active tenant was lost; the context went back to the default.
    ResetToDefaultTenant,
}

impl From<ContextChangeEventType> for TenantContextEvent {
    fn from(event: ContextChangeEventType) -> Self {
        match event {
            ContextChangeEventType::SwitchTenant => Self::SwitchTenant,
            ContextChangeEventType::SetDefaultTenant => Self::SetDefaultTenant,
            ContextChangeEventType::ApplyDefaultTenant => Self::ApplyDefaultTenant,
            ContextChangeEventType::ResetToDefaultTenant => Self::ResetToDefaultTenant,
        }
    }
}

/// One change of a user's tenant context.
pub struct TenantContextChange(pub session_context_change::Model);

#[Object]
impl TenantContextChange {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Whose context changed.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx.load_one(UserById(self.0.user_id)).await?.map(User))
    }
    /// The user's id.
    async fn user_id(&self) -> Uuid {
        self.0.user_id
    }
    /// The tenant the change is about (the new context).
    async fn tenant(&self, ctx: &Context<'_>) -> Result<Option<Tenant>> {
        Ok(ctx.load_one(TenantById(self.0.tenant_id)).await?.map(Tenant))
    }
    /// The tenant's id.
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    /// What happened.
    async fn event_type(&self) -> TenantContextEvent {
        self.0.event_type.into()
    }
    /// Details: `fromTenantId`, `toTenantId`, `loginSessionId`, `reason`.
    async fn metadata(&self) -> Option<Json<serde_json::Value>> {
        self.0.metadata.clone().map(Json)
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Tenant-context queries.
#[derive(Default)]
pub struct TenantContextQuery;

#[Object]
impl TenantContextQuery {
    /// The trail of tenant-context changes, newest first: your own, or (tenant
    /// admins) those of your tenant.
    async fn tenant_context_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this user's.")] user_id: Option<Uuid>,
        #[graphql(desc = "At most this many (1–200, default 50).")] first: Option<i32>,
    ) -> Result<Vec<TenantContextChange>> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let limit = match first {
            None => 50,
            Some(first @ 1..=200) => u64::try_from(first).unwrap_or(50),
            Some(_) => return Err(AppError::bad_input("first", "must be between 1 and 200").into()),
        };
        let mut query = session_context_change::Entity::find()
            .filter(scope.context_changes())
            .order_by_desc(session_context_change::Column::CreatedAt)
            .order_by_desc(session_context_change::Column::Id)
            .limit(limit);
        if let Some(user_id) = user_id {
            query = query.filter(session_context_change::Column::UserId.eq(user_id));
        }
        Ok(query
            .all(&state.db)
            .await
            .map_err(AppError::from)?
            .into_iter()
            .map(TenantContextChange)
            .collect())
    }
}

/// Tenant-context mutations.
#[derive(Default)]
pub struct TenantContextMutation;

#[Object]
impl TenantContextMutation {
    /// Makes another tenant you belong to the active tenant of this login
    /// session. Recorded as SWITCH_TENANT.
    async fn switch_tenant(&self, ctx: &Context<'_>, tenant_id: Uuid) -> Result<Viewer> {
        let identity = ctx.viewer()?;
        let state = ctx.state()?;
        let account = user::Entity::find_by_id(identity.user_id)
            .one(&state.db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::NotFound { resource: "user" })?;
        let context = tenant_context::switch_tenant(
            &state.db,
            state.clock.now(),
            &account,
            identity.login_session_id,
            tenant_id,
        )
        .await?;
        // Built from what is known, with no query after the commit.
        Ok(Viewer::new(
            account,
            identity.login_session_id,
            context.tenant_id,
            context.role,
        ))
    }

    /// Makes a tenant you belong to your default (applied at login).
    /// Recorded as SET_DEFAULT_TENANT.
    async fn set_default_tenant(&self, ctx: &Context<'_>, tenant_id: Uuid) -> Result<Membership> {
        let identity = ctx.viewer()?;
        let state = ctx.state()?;
        let membership = tenant_context::set_default_tenant(
            &state.db,
            state.clock.now(),
            identity.user_id,
            identity.login_session_id,
            tenant_id,
        )
        .await?;
        Ok(Membership(membership))
    }
}
