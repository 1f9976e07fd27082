//! Tenants (districts) and their schools.

use entity::{tenant, tenant_membership};
use sea_orm::sea_query::{Condition, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::auth::UserIdentity;
use chrono::{DateTime, Utc};

use crate::error::{AppError, AppResult};
use crate::events::{Event, OrganisationChange};
use crate::services::validation::required_name;
use crate::unit_of_work::Outcome;

/// Longest accepted tenant name, in characters.
pub(crate) const MAX_TENANT_NAME: usize = 255;

/// The tenants the viewer may see (a super admin: all; others: their
/// memberships), by name.
pub(crate) async fn list_tenants(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
) -> AppResult<Vec<tenant::Model>> {
    Ok(tenant::Entity::find()
        .filter(visible_tenants(viewer.user_id, viewer.is_super_admin))
        .order_by_asc(tenant::Column::Name)
        .order_by_asc(tenant::Column::Id)
        .all(db)
        .await?)
}

/// One tenant the viewer may see.
pub(crate) async fn find_tenant(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    id: Uuid,
) -> AppResult<tenant::Model> {
    tenant::Entity::find_by_id(id)
        .filter(visible_tenants(viewer.user_id, viewer.is_super_admin))
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })
}

/// Tenants a viewer may see: all for a super admin, otherwise those they
/// are a member of.
pub(crate) fn visible_tenants(user_id: Uuid, is_super_admin: bool) -> Condition {
    if is_super_admin {
        return Condition::all();
    }
    let memberships = Query::select()
        .column(tenant_membership::Column::TenantId)
        .from(tenant_membership::Entity.table_ref())
        .and_where(tenant_membership::Column::UserId.eq(user_id))
        .to_owned();
    Condition::all().add(tenant::Column::Id.in_subquery(memberships))
}

/// Creates a tenant with every session setting inherited (super admins only).
pub(crate) async fn create_tenant(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    name: &str,
) -> AppResult<Outcome<tenant::Model>> {
    if !viewer.is_super_admin {
        return Err(AppError::forbidden("only a super admin may create tenants"));
    }
    let name = required_name("name", name, MAX_TENANT_NAME)?;
    let model = tenant::ActiveModel {
        name: Set(name),
        ..Default::default()
    };
    let tenant = model.insert(db).await?;
    let created = Event::organisation(OrganisationChange::Created, tenant.id, None, now);
    Ok(Outcome::announcing(tenant, vec![created]))
}
