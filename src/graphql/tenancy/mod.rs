//! Tenants, schools and users.

use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::{school, tenant, user};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::SchoolsOfTenant;
use crate::services::tenancy as service;

/// Tenant queries.
#[derive(Default)]
pub struct TenancyQuery;

#[Object]
impl TenancyQuery {
    /// Every tenant, by name.
    async fn tenants(&self, ctx: &Context<'_>) -> Result<Vec<Tenant>> {
        let state = ctx.state()?;
        Ok(service::list_tenants(&state.db)
            .await?
            .into_iter()
            .map(Tenant)
            .collect())
    }

    /// One tenant by id.
    async fn tenant(&self, ctx: &Context<'_>, id: Uuid) -> Result<Tenant> {
        let state = ctx.state()?;
        Ok(Tenant(service::find_tenant(&state.db, id).await?))
    }
}

/// Tenant mutations.
#[derive(Default)]
pub struct TenancyMutation;

/// A new tenant.
#[derive(InputObject)]
pub struct CreateTenantInput {
    /// Display name, 1–255 characters.
    pub name: String,
}

#[Object]
impl TenancyMutation {
    /// Creates a tenant; every session setting starts inherited.
    async fn create_tenant(&self, ctx: &Context<'_>, input: CreateTenantInput) -> Result<Tenant> {
        let state = ctx.state()?;
        let txn = state.db.begin().await.map_err(AppError::from)?;
        let tenant = service::create_tenant(&txn, &input.name).await?;
        txn.commit().await.map_err(AppError::from)?;
        Ok(Tenant(tenant))
    }
}

/// An organisation (a district): the boundary of all data.
pub struct Tenant(pub tenant::Model);

#[Object]
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

#[Object]
impl School {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
}

/// A person with an account: supervised user, guardian or administrator.
pub struct User(pub user::Model);

#[Object]
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
}
