//! The tenant context: switching, the default tenant, and the audit trail
//! of context changes (document 002).

use async_graphql::{Context, Enum, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::session_context_change::{self, ContextChangeEventType};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{Tenant, User};
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{TenantById, UserById};

/// What changed the tenant context.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "the names are the event types of document 002"
)]
pub(crate) enum TenantContextEvent {
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

#[Object(serial)]
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
    /// Whose change it is and super admins see all of them; a tenant admin
    /// reading a member's change sees the tenant ids of the active tenant
    /// only (others are null) and no login session id.
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        let scope = ctx.scope()?;
        let Some(metadata) = &self.0.metadata else {
            return Ok(None);
        };
        if scope.is_super_admin || scope.user_id == self.0.user_id {
            return Ok(Some(Json(metadata.clone())));
        }
        Ok(Some(Json(metadata_in_scope(metadata, scope.tenant_id))))
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// What of a context change's metadata a tenant admin may see of another
/// person's change: `reason`, and tenant ids that are the admin's tenant.
fn metadata_in_scope(metadata: &serde_json::Value, tenant_id: Uuid) -> serde_json::Value {
    let Some(fields) = metadata.as_object() else {
        return serde_json::Value::Null;
    };
    let own_tenant = tenant_id.to_string();
    let mut visible = serde_json::Map::new();
    for (key, value) in fields {
        let shown = match key.as_str() {
            "reason" => value.clone(),
            "fromTenantId" | "toTenantId" if value.as_str() == Some(own_tenant.as_str()) => value.clone(),
            "fromTenantId" | "toTenantId" => serde_json::Value::Null,
            _ => continue,
        };
        visible.insert(key.clone(), shown);
    }
    serde_json::Value::Object(visible)
}

/// Tenant-context queries.
#[derive(Default)]
pub struct TenantContextQuery;

#[Object(serial)]
impl TenantContextQuery {
    /// The trail of tenant-context changes, newest first: your own, or (tenant
    /// admins) those of your tenant.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, 50, 200, child_complexity)")]
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
