//! Schools of the active tenant.

use super::*;

fn school_name_taken(name: &str) -> String {
    format!("a school named \"{name}\" already exists in this tenant")
}

/// Fails with `CONFLICT` when another school of the tenant has `name`.
async fn ensure_school_name_free(
    db: &impl ConnectionTrait,
    scope: &Scope,
    name: &str,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut query = school::Entity::find()
        .filter(scope.schools())
        .filter(school::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(school::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(AppError::Conflict(school_name_taken(name)));
    }
    Ok(())
}

/// A school of the active tenant.
async fn find_school(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<school::Model> {
    school::Entity::find_by_id(id)
        .filter(scope.schools())
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "school" })
}

/// Creates a school in the active tenant (tenant admins). Names are unique
/// per tenant.
pub(crate) async fn create_school(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    name: &str,
) -> AppResult<Outcome<school::Model>> {
    scope.require_tenant_admin()?;
    let name = required_name("name", name, MAX_SCHOOL_NAME)?;
    ensure_school_name_free(db, scope, &name, None).await?;
    let school = school::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        name: Set(name.clone()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| conflict_on_unique(error, || school_name_taken(&name)))?;
    let created = Event::organisation(
        OrganisationChange::Created,
        school.tenant_id,
        Some(school.id),
        now,
    );
    Ok(Outcome::announcing(school, vec![created]))
}

/// Renames a school of the active tenant (tenant admins).
pub async fn update_school(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    id: Uuid,
    name: &str,
) -> AppResult<Outcome<school::Model>> {
    scope.require_tenant_admin()?;
    let school = find_school(db, scope, id).await?;
    let name = required_name("name", name, MAX_SCHOOL_NAME)?;
    ensure_school_name_free(db, scope, &name, Some(id)).await?;
    let mut change: school::ActiveModel = school.into();
    change.name = Set(name.clone());
    let school = change
        .update(db)
        .await
        .map_err(|error| conflict_on_unique(error, || school_name_taken(&name)))?;
    let renamed = Event::organisation(
        OrganisationChange::Renamed,
        school.tenant_id,
        Some(school.id),
        now,
    );
    Ok(Outcome::announcing(school, vec![renamed]))
}

/// Deletes a school of the active tenant (tenant admins); its users keep
/// their accounts, without a school (the `Deleted` event stands for those
/// membership changes too).
pub(crate) async fn delete_school(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    id: Uuid,
) -> AppResult<Outcome<Uuid>> {
    scope.require_tenant_admin()?;
    let school = find_school(db, scope, id).await?;
    school::Entity::delete_by_id(school.id).exec(db).await?;
    let deleted = Event::organisation(
        OrganisationChange::Deleted,
        school.tenant_id,
        Some(school.id),
        now,
    );
    Ok(Outcome::announcing(school.id, vec![deleted]))
}
