//! Guardian links of the active tenant.

use super::*;

/// Which guardian links to list.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GuardianLinkFilter {
    /// Only this guardian's.
    pub guardian_id: Option<Uuid>,
    /// Only those supervising this user.
    pub user_id: Option<Uuid>,
}

/// The guardian links the viewer may see, oldest first, at most `limit`.
pub(crate) async fn list_guardian_links(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: GuardianLinkFilter,
    limit: u64,
) -> AppResult<Vec<guardian_link::Model>> {
    let mut query = guardian_link::Entity::find()
        .filter(scope.guardian_links())
        .order_by_asc(guardian_link::Column::CreatedAt)
        .order_by_asc(guardian_link::Column::Id)
        .limit(limit);
    if let Some(guardian_id) = filter.guardian_id {
        query = query.filter(guardian_link::Column::GuardianId.eq(guardian_id));
    }
    if let Some(user_id) = filter.user_id {
        query = query.filter(guardian_link::Column::UserId.eq(user_id));
    }
    Ok(query.all(db).await?)
}

const MEMBERSHIP_NEEDED: &str = "a membership is needed before a guardian link";

fn link_exists() -> String {
    "this guardian already supervises this user in this tenant".to_owned()
}

/// Makes `guardian_id` a guardian of `user_id` in the active tenant (tenant
/// admins). Both must be members; the guardian with the role guardian or
/// admin.
pub(crate) async fn create_guardian_link(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    guardian_id: Uuid,
    user_id: Uuid,
) -> AppResult<Outcome<guardian_link::Model>> {
    scope.require_tenant_admin()?;
    if guardian_id == user_id {
        return Err(AppError::bad_input(
            "userId",
            "must differ from guardianId: nobody supervises themselves",
        ));
    }
    let guardian = membership(db, guardian_id, scope.tenant_id)
        .await?
        .ok_or_else(|| {
            AppError::bad_input(
                "guardianId",
                format!("{MEMBERSHIP_NEEDED}: add the guardian to the tenant first"),
            )
        })?;
    if guardian.role == MembershipRole::Member {
        return Err(AppError::bad_input(
            "guardianId",
            "must have the role GUARDIAN or ADMIN in the tenant",
        ));
    }
    if membership(db, user_id, scope.tenant_id).await?.is_none() {
        return Err(AppError::bad_input(
            "userId",
            format!("{MEMBERSHIP_NEEDED}: add the user to the tenant first"),
        ));
    }
    if crate::services::scope::supervises(db, scope.tenant_id, guardian_id, user_id).await? {
        return Err(AppError::Conflict(link_exists()));
    }
    let link = guardian_link::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        guardian_id: Set(guardian_id),
        user_id: Set(user_id),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| conflict_on_unique(error, link_exists))?;
    let linked = Event::guardian_link(true, guardian_id, user_id, scope.tenant_id, now);
    Ok(Outcome::announcing(link, vec![linked]))
}

/// Deletes a guardian link of the active tenant (tenant admins).
pub(crate) async fn delete_guardian_link(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    id: Uuid,
) -> AppResult<Outcome<Uuid>> {
    scope.require_tenant_admin()?;
    let link = guardian_link::Entity::find_by_id(id)
        .filter(scope.guardian_links())
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "guardian link",
        })?;
    guardian_link::Entity::delete_by_id(link.id).exec(db).await?;
    let unlinked = Event::guardian_link(false, link.guardian_id, link.user_id, link.tenant_id, now);
    Ok(Outcome::announcing(link.id, vec![unlinked]))
}
