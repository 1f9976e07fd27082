//! Memberships of the active tenant: adding (super admins), roles, removal.

use super::*;

/// Who is to join a tenant.
#[derive(Debug, Clone)]
pub enum AccountRef {
    /// By id.
    Id(Uuid),
    /// By e-mail address (normalised here).
    Email(String),
}

/// A membership of the active tenant.
async fn tenant_membership_of(
    db: &impl ConnectionTrait,
    scope: &Scope,
    user_id: Uuid,
) -> AppResult<tenant_membership::Model> {
    membership(db, user_id, scope.tenant_id)
        .await?
        .ok_or(AppError::NotFound {
            resource: "membership",
        })
}

/// Adds an existing account to the active tenant directly (super admins
/// only: they may change any account anyway). Tenant admins invite instead,
/// and the account accepts. It becomes the account's default tenant when it
/// has none.
pub async fn add_membership(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    account: AccountRef,
    role: MembershipRole,
) -> AppResult<Outcome<tenant_membership::Model>> {
    if !scope.is_super_admin {
        return Err(AppError::forbidden(
            "only a super admin adds an existing account directly: invite it with inviteMember, and it joins when it accepts",
        ));
    }
    scope.require_tenant_admin()?;
    let found = match account {
        AccountRef::Id(id) => user::Entity::find_by_id(id).one(db).await?,
        AccountRef::Email(email) => {
            let email = normalize_email("email", &email)?;
            user::Entity::find()
                .filter(user::Column::Email.eq(email))
                .one(db)
                .await?
        }
    };
    let account = found.ok_or(AppError::NotFound { resource: "user" })?;
    if membership(db, account.id, scope.tenant_id).await?.is_some() {
        return Err(AppError::Conflict(
            "the user is already a member of this tenant: change their role instead".to_owned(),
        ));
    }
    let first = default_membership(db, account.id).await?.is_none();
    let added = tenant_membership::ActiveModel {
        user_id: Set(account.id),
        tenant_id: Set(scope.tenant_id),
        role: Set(role),
        is_default: Set(first),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| {
        conflict_on_unique(error, || "the user is already a member of this tenant".to_owned())
    })?;
    if first {
        record_default(
            db,
            now,
            account.id,
            None,
            scope.tenant_id,
            DefaultReason::FirstMembership,
            scope.user_id,
        )
        .await?;
    }
    let joined = Event::membership(MembershipChange::Added, added.user_id, added.tenant_id, now);
    Ok(Outcome::announcing(added, vec![joined]))
}

/// Fails with `CONFLICT` if `user_id` is the tenant's only administrator.
/// Locks the administrators' memberships (PostgreSQL) so that two
/// concurrent demotions cannot both succeed.
async fn ensure_not_last_admin(db: &impl ConnectionTrait, scope: &Scope, user_id: Uuid) -> AppResult<()> {
    let admins = tenant_membership::Entity::find()
        .filter(scope.memberships())
        .filter(tenant_membership::Column::Role.eq(MembershipRole::Admin))
        .lock_exclusive()
        .all(db)
        .await?;
    if admins.iter().all(|admin| admin.user_id == user_id) {
        return Err(AppError::Conflict(
            "this is the last administrator of the tenant: make someone else an administrator first"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Changes a member's role in the active tenant (tenant admins). The last
/// administrator cannot be demoted; demoting a guardian to member removes
/// the links in which they are the guardian.
///
/// The `RoleChanged` event stands for the links it removed too.
pub(crate) async fn update_membership_role(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    user_id: Uuid,
    role: MembershipRole,
) -> AppResult<Outcome<tenant_membership::Model>> {
    scope.require_tenant_admin()?;
    let current = tenant_membership_of(db, scope, user_id).await?;
    if current.role == role {
        return Ok(Outcome::quiet(current));
    }
    if current.role == MembershipRole::Admin {
        ensure_not_last_admin(db, scope, user_id).await?;
    }
    if role == MembershipRole::Member {
        guardian_link::Entity::delete_many()
            .filter(guardian_link::Column::TenantId.eq(scope.tenant_id))
            .filter(guardian_link::Column::GuardianId.eq(user_id))
            .exec(db)
            .await?;
    }
    let mut change: tenant_membership::ActiveModel = current.into();
    change.role = Set(role);
    let updated = change.update(db).await?;
    let changed = Event::membership(MembershipChange::RoleChanged, user_id, scope.tenant_id, now);
    Ok(Outcome::announcing(updated, vec![changed]))
}

/// Removes a member from the active tenant (tenant admins), with their
/// guardian links there. An administrator cannot remove their own
/// membership, nor anyone the last administrator. When it was the user's
/// default tenant, their oldest remaining membership becomes the default.
/// Returns the removed membership's id.
pub async fn remove_membership(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    user_id: Uuid,
) -> AppResult<Outcome<Uuid>> {
    scope.require_tenant_admin()?;
    let current = tenant_membership_of(db, scope, user_id).await?;
    if current.role == MembershipRole::Admin {
        if user_id == scope.user_id {
            return Err(AppError::Conflict(
                "you cannot remove your own administrator membership: ask another administrator".to_owned(),
            ));
        }
        ensure_not_last_admin(db, scope, user_id).await?;
    }
    tenant_membership::Entity::delete_by_id(current.id)
        .exec(db)
        .await?;
    if current.is_default {
        promote_defaults(db, now, &[user_id], scope.tenant_id, scope.user_id).await?;
    }
    tracing::info!(user_id = %user_id, tenant_id = %scope.tenant_id, by = %scope.user_id, "membership removed");
    let removed = Event::membership(MembershipChange::Removed, user_id, scope.tenant_id, now);
    Ok(Outcome::announcing(current.id, vec![removed]))
}
