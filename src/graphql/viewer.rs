//! The caller: `me`, and the mutations that move their tenant context
//! (which answer with the new view of the caller). It shows the caller's
//! account and tenants (`tenancy`) and login session (`login_sessions`), so
//! it sits above both.

use async_graphql::{Context, Object, Result};
use std::sync::Arc;

use entity::tenant_membership;
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::login_sessions::LoginSession;
use crate::graphql::tenancy::{Membership, MembershipRole, Tenant, User};
use crate::services::tenant_context::{self, TenantContext};
use crate::unit_of_work::write;

/// The caller and their tenant context, as authentication found them: no
/// query reads the caller's identity again.
pub struct Viewer {
    identity: Arc<UserIdentity>,
    tenant_id: Option<Uuid>,
    role: Option<tenant_membership::MembershipRole>,
}

impl Viewer {
    /// The view of the authenticated caller.
    pub fn new(identity: Arc<UserIdentity>) -> Self {
        Self {
            tenant_id: identity.tenant_id,
            role: identity.role,
            identity,
        }
    }

    /// The caller after moving to `tenant_id` with `role`.
    fn moved(identity: Arc<UserIdentity>, context: TenantContext) -> Self {
        Self {
            identity,
            tenant_id: context.tenant_id,
            role: context.role,
        }
    }
}

#[Object(serial)]
impl Viewer {
    /// The logged-in user.
    async fn user(&self) -> User {
        User(self.identity.account.as_ref().clone())
    }
    /// Whether the user administers the whole system.
    async fn is_super_admin(&self) -> bool {
        self.identity.is_super_admin
    }
    /// The current login session.
    async fn login_session(&self) -> LoginSession {
        let mut row = self.identity.login_session.as_ref().clone();
        row.tenant_id = self.tenant_id;
        LoginSession(row)
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
    async fn memberships(&self) -> Vec<Membership> {
        let mut memberships = self.identity.memberships.as_ref().clone();
        memberships.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        memberships.into_iter().map(Membership).collect()
    }
}

/// Builds the `me` view of the caller.
pub fn viewer(ctx: &Context<'_>) -> Result<Viewer> {
    Ok(Viewer::new(ctx.viewer()?.clone()))
}

/// The caller.
#[derive(Default)]
pub(crate) struct ViewerQuery;

#[Object(serial)]
impl ViewerQuery {
    /// The caller: user, login session, tenant context, memberships.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        viewer(ctx)
    }
}

/// Tenant-context mutations.
#[derive(Default)]
pub(crate) struct TenantContextMutation;

#[Object(serial)]
impl TenantContextMutation {
    /// Makes another tenant you belong to the active tenant of this login
    /// session. Recorded as SWITCH_TENANT.
    async fn switch_tenant(&self, ctx: &Context<'_>, tenant_id: Uuid) -> Result<Viewer> {
        let identity = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let context = write(state, async |txn| {
            tenant_context::switch_tenant(txn, now, &identity.account, identity.login_session_id, tenant_id)
                .await
        })
        .await?;
        // Built from what is known, with no query after the commit.
        Ok(Viewer::moved(identity.clone(), context))
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
