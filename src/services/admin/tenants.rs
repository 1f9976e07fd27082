//! Tenants: renaming and deleting them.

use super::*;

/// The tenant `tenant_id` if the viewer administers it: a super admin any
/// tenant, anyone else a tenant where they are an admin. `NOT_FOUND` when
/// the viewer cannot see the tenant, `FORBIDDEN` when they can but are not
/// its administrator.
pub(crate) async fn administered_tenant(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    tenant_id: Uuid,
) -> AppResult<tenant::Model> {
    let tenant = tenant::Entity::find_by_id(tenant_id)
        .filter(visible_tenants(viewer.user_id, viewer.is_super_admin))
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })?;
    if !viewer.is_super_admin {
        let role = membership(db, viewer.user_id, tenant_id).await?.map(|m| m.role);
        if role != Some(MembershipRole::Admin) {
            return Err(AppError::forbidden(
                "only an administrator of the tenant or a super admin may change it",
            ));
        }
    }
    Ok(tenant)
}

/// Renames a tenant (a super admin, or an administrator of that tenant).
pub async fn update_tenant(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
    name: &str,
) -> AppResult<Outcome<tenant::Model>> {
    let tenant = administered_tenant(db, viewer, id).await?;
    let name = required_name("name", name, MAX_TENANT_NAME)?;
    let mut change: tenant::ActiveModel = tenant.into();
    change.name = Set(name);
    let tenant = change.update(db).await?;
    let renamed = Event::organisation(OrganisationChange::Renamed, tenant.id, None, now);
    Ok(Outcome::announcing(tenant, vec![renamed]))
}

/// Deletes a tenant and everything in it (super admins only). Members whose
/// default tenant it was get their oldest remaining membership as default.
pub(crate) async fn delete_tenant(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
) -> AppResult<Outcome<Uuid>> {
    if !viewer.is_super_admin {
        return Err(AppError::forbidden("only a super admin may delete tenants"));
    }
    let deleted = tenant::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })?;
    let orphaned: Vec<Uuid> = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::TenantId.eq(id))
        .filter(tenant_membership::Column::IsDefault.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let sessions_gone = crate::services::sessions::deleted_along(
        db,
        sea_orm::sea_query::Condition::all().add(entity::session::Column::TenantId.eq(id)),
        now,
    )
    .await?;
    tenant::Entity::delete_by_id(id).exec(db).await?;
    promote_defaults(db, now, &orphaned, id, viewer.user_id).await?;
    // The tenant is gone, so the row names it in `resource` only.
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: None,
            actor_id: Some(viewer.user_id),
            action: AccountAction::DeleteTenant,
            resource: format!("District:{id}"),
            details: format!(
                "tenant \"{}\" deleted with its schools, memberships and sessions",
                deleted.name
            ),
        },
    )
    .await?;
    tracing::info!(tenant_id = %id, by = %viewer.user_id, "tenant deleted");
    // It stands for everything that went with the tenant.
    let mut events = sessions_gone;
    events.push(Event::organisation(OrganisationChange::Deleted, id, None, now));
    Ok(Outcome::announcing(id, events))
}
