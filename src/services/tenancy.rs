//! Tenants (districts) and their schools.

use entity::tenant;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::services::validation::required_name;

/// Longest accepted tenant name, in characters.
pub const MAX_TENANT_NAME: usize = 255;

/// Every tenant, by name.
pub async fn list_tenants(db: &impl ConnectionTrait) -> AppResult<Vec<tenant::Model>> {
    Ok(tenant::Entity::find()
        .order_by_asc(tenant::Column::Name)
        .order_by_asc(tenant::Column::Id)
        .all(db)
        .await?)
}

/// One tenant.
pub async fn find_tenant(db: &impl ConnectionTrait, id: Uuid) -> AppResult<tenant::Model> {
    tenant::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })
}

/// Creates a tenant with every session setting inherited.
pub async fn create_tenant(db: &impl ConnectionTrait, name: &str) -> AppResult<tenant::Model> {
    let name = required_name("name", name, MAX_TENANT_NAME)?;
    let model = tenant::ActiveModel {
        name: Set(name),
        ..Default::default()
    };
    Ok(model.insert(db).await?)
}
