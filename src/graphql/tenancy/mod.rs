//! Tenants, schools and users.

use async_graphql::{Context, Enum, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::{school, tenant, tenant_membership, user};
use uuid::Uuid;

use crate::graphql::ContextExt;
use crate::graphql::loaders::{
    GuardiansOfUser, MembershipsOfUser, SchoolById, SchoolsOfTenant, SupervisedUsersOfUser, TenantById,
};
use crate::services::tenancy as service;

mod admin;
mod context;
mod invitations;

pub use admin::{
    AddMembershipInput, AdminMutation, AdminQuery, CreateSchoolInput, CreateUserInput, CreateUserResult,
    GuardianLink, UpdateSchoolInput, UpdateTenantInput, UpdateUserInput,
};
pub use context::{TenantContextChange, TenantContextQuery};
pub use invitations::{Invitation, InvitationMutation, InvitationQuery};

/// A user's role in a tenant.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MembershipRole {
    /// A supervised user: sees their own data.
    Member,
    /// A guardian: also sees the sessions of the users they supervise.
    Guardian,
    /// A tenant administrator: sees and manages everything of the tenant.
    Admin,
}

impl From<tenant_membership::MembershipRole> for MembershipRole {
    fn from(role: tenant_membership::MembershipRole) -> Self {
        match role {
            tenant_membership::MembershipRole::Member => Self::Member,
            tenant_membership::MembershipRole::Guardian => Self::Guardian,
            tenant_membership::MembershipRole::Admin => Self::Admin,
        }
    }
}

impl From<MembershipRole> for tenant_membership::MembershipRole {
    fn from(role: MembershipRole) -> Self {
        match role {
            MembershipRole::Member => Self::Member,
            MembershipRole::Guardian => Self::Guardian,
            MembershipRole::Admin => Self::Admin,
        }
    }
}

/// A user's membership in a tenant.
pub struct Membership(pub tenant_membership::Model);

/// A user's membership in a tenant.
#[Object(serial)]
impl Membership {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The member.
    async fn user_id(&self) -> Uuid {
        self.0.user_id
    }
    /// The tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> Result<Option<Tenant>> {
        Ok(ctx.load_one(TenantById(self.0.tenant_id)).await?.map(Tenant))
    }
    /// The tenant's id.
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    /// The member's role there.
    async fn role(&self) -> MembershipRole {
        self.0.role.into()
    }
    /// Whether it is the user's default tenant (applied at login).
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// The member's school in this tenant, if any.
    async fn school_id(&self) -> Option<Uuid> {
        self.0.school_id
    }
    /// The member's school in this tenant, if any (and you may see it).
    async fn school(&self, ctx: &Context<'_>) -> Result<Option<School>> {
        let Some(school_id) = self.0.school_id else {
            return Ok(None);
        };
        Ok(ctx.load_one(SchoolById(school_id)).await?.map(School))
    }
}

/// Tenant queries.
#[derive(Default)]
pub(crate) struct TenancyQuery;

#[Object(serial)]
impl TenancyQuery {
    /// The tenants you may see (a super admin: every tenant; others: those
    /// they are a member of), by name.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn tenants(&self, ctx: &Context<'_>) -> Result<Vec<Tenant>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer()?;
        Ok(service::list_tenants(&state.db, viewer)
            .await?
            .into_iter()
            .map(Tenant)
            .collect())
    }

    /// One tenant by id.
    async fn tenant(&self, ctx: &Context<'_>, id: Uuid) -> Result<Tenant> {
        let state = ctx.state()?;
        let viewer = ctx.viewer()?;
        Ok(Tenant(service::find_tenant(&state.db, viewer, id).await?))
    }
}

/// Tenant mutations.
#[derive(Default)]
pub(crate) struct TenancyMutation;

/// A new tenant.
#[derive(InputObject)]
pub(crate) struct CreateTenantInput {
    /// Display name, 1–255 characters.
    pub name: String,
}

#[Object(serial)]
impl TenancyMutation {
    /// Creates a tenant; every session setting starts inherited. Super admins only.
    async fn create_tenant(&self, ctx: &Context<'_>, input: CreateTenantInput) -> Result<Tenant> {
        let state = ctx.state()?;
        let viewer = ctx.viewer()?;
        let tenant = crate::unit_of_work::write(state, async |txn| {
            service::create_tenant(txn, state.clock.now(), viewer, &input.name).await
        })
        .await?;
        Ok(Tenant(tenant))
    }
}

/// An organisation (a district): the boundary of all data.
pub struct Tenant(pub tenant::Model);

/// An organisation (a district): the boundary of all data.
#[Object(serial)]
impl Tenant {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the row last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The tenant's schools, by name.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn schools(&self, ctx: &Context<'_>) -> Result<Vec<School>> {
        Ok(ctx
            .load_one(SchoolsOfTenant(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(School)
            .collect())
    }
}

/// A school of a tenant.
pub struct School(pub school::Model);

/// A school of a tenant.
#[Object(serial)]
impl School {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The tenant (district) it belongs to.
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the row last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A person with an account: supervised user, guardian or administrator.
pub struct User(pub user::Model);

/// A person with an account: supervised user, guardian or administrator.
#[Object(serial)]
impl User {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Login e-mail address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Display name.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// Whether the user administers the whole system.
    async fn is_super_admin(&self) -> bool {
        self.0.is_super_admin
    }
    /// The user's school in your active tenant, if any. A school belongs
    /// to a membership: the same account may have another school in
    /// another tenant (see `memberships`).
    async fn school(&self, ctx: &Context<'_>) -> Result<Option<School>> {
        let Ok(scope) = ctx.scope() else {
            return Ok(None);
        };
        let school_id = ctx
            .load_one(MembershipsOfUser(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .find(|membership| membership.tenant_id == scope.tenant_id)
            .and_then(|membership| membership.school_id);
        let Some(school_id) = school_id else {
            return Ok(None);
        };
        Ok(ctx.load_one(SchoolById(school_id)).await?.map(School))
    }
    /// The user's role in your active tenant, if they are a member.
    async fn role(&self, ctx: &Context<'_>) -> Result<Option<MembershipRole>> {
        let Ok(scope) = ctx.scope() else {
            return Ok(None);
        };
        Ok(ctx
            .load_one(MembershipsOfUser(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .find(|membership| membership.tenant_id == scope.tenant_id)
            .map(|membership| membership.role.into()))
    }
    /// The user's memberships in the tenants you may see, default first.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        Ok(ctx
            .load_one(MembershipsOfUser(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Membership)
            .collect())
    }
    /// The user's guardians in the active tenant (through the guardian links
    /// you may see), by e-mail.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn guardians(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        Ok(ctx
            .load_one(GuardiansOfUser(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(User)
            .collect())
    }
    /// The users this user supervises in the active tenant (through the
    /// guardian links you may see), by e-mail.
    #[graphql(
        complexity = "crate::graphql::limits::list_cost(crate::graphql::limits::UNBOUNDED_LIST_ESTIMATE, child_complexity)"
    )]
    async fn supervised_users(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        Ok(ctx
            .load_one(SupervisedUsersOfUser(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(User)
            .collect())
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the account last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
