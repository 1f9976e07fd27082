//! The caller: `me`, and the mutations that move their tenant context
//! (which answer with the new view of the caller). It shows the caller's
//! account and tenants (`tenancy`) and login session (`login_sessions`), so
//! it sits above both.

use async_graphql::{Context, Object, Result};
use entity::{session_log, tenant_membership, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::login_sessions::LoginSession;
use crate::graphql::tenancy::{Membership, MembershipRole, Tenant, User};
use crate::services::tenant_context;
use crate::unit_of_work::write;

/// The caller and their tenant context.
pub struct Viewer {
    user: user::Model,
    login_session_id: Uuid,
    tenant_id: Option<Uuid>,
    role: Option<tenant_membership::MembershipRole>,
}

impl Viewer {
    /// The view of `user` working in `tenant_id` with `role`.
    pub fn new(
        user: user::Model,
        login_session_id: Uuid,
        tenant_id: Option<Uuid>,
        role: Option<tenant_membership::MembershipRole>,
    ) -> Self {
        Self {
            user,
            login_session_id,
            tenant_id,
            role,
        }
    }
}

#[Object]
impl Viewer {
    /// The logged-in user.
    async fn user(&self) -> User {
        User(self.user.clone())
    }
    /// Whether the user administers the whole system.
    async fn is_super_admin(&self) -> bool {
        self.user.is_super_admin
    }
    /// The current login session.
    async fn login_session(&self, ctx: &Context<'_>) -> Result<LoginSession> {
        let state = ctx.state()?;
        session_log::Entity::find_by_id(self.login_session_id)
            .one(&state.db)
            .await
            .map_err(AppError::from)?
            .map(LoginSession)
            .ok_or_else(|| {
                AppError::NotFound {
                    resource: "login session",
                }
                .into()
            })
    }
    /// The active tenant, if one is chosen.
    async fn active_tenant(&self, ctx: &Context<'_>) -> Result<Option<Tenant>> {
        let Some(tenant_id) = self.tenant_id else {
            return Ok(None);
        };
        let state = ctx.state()?;
        Ok(entity::tenant::Entity::find_by_id(tenant_id)
            .one(&state.db)
            .await
            .map_err(AppError::from)?
            .map(Tenant))
    }
    /// The user's role in the active tenant.
    async fn role(&self) -> Option<MembershipRole> {
        self.role.map(Into::into)
    }
    /// Every tenant the user belongs to, default first.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        let state = ctx.state()?;
        Ok(tenant_membership::Entity::find()
            .filter(tenant_membership::Column::UserId.eq(self.user.id))
            .order_by_desc(tenant_membership::Column::IsDefault)
            .order_by_asc(tenant_membership::Column::CreatedAt)
            .all(&state.db)
            .await
            .map_err(AppError::from)?
            .into_iter()
            .map(Membership)
            .collect())
    }
}

/// Builds the `me` view of the caller.
pub async fn viewer(ctx: &Context<'_>) -> Result<Viewer> {
    let identity = ctx.viewer()?;
    let state = ctx.state()?;
    let user = user::Entity::find_by_id(identity.user_id)
        .one(&state.db)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound { resource: "user" })?;
    Ok(Viewer::new(
        user,
        identity.login_session_id,
        identity.tenant_id,
        identity.role,
    ))
}

/// The caller.
#[derive(Default)]
pub(crate) struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The caller: user, login session, tenant context, memberships.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        viewer(ctx).await
    }
}

/// Tenant-context mutations.
#[derive(Default)]
pub(crate) struct TenantContextMutation;

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
        let now = state.clock.now();
        let context = write(state, async |txn| {
            tenant_context::switch_tenant(txn, now, &account, identity.login_session_id, tenant_id).await
        })
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
        let now = state.clock.now();
        let membership = write(state, async |txn| {
            tenant_context::set_default_tenant(
                txn,
                now,
                identity.user_id,
                identity.login_session_id,
                tenant_id,
            )
            .await
        })
        .await?;
        Ok(Membership(membership))
    }
}
