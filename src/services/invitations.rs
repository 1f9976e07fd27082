//! Invitations: how an existing account joins another tenant.
//!
//! An administrator creates new accounts in their tenant, but an account
//! that exists already (it belongs to some tenant) joins only by accepting
//! an invitation. `invite` answers the same whether or not the address has
//! an account, and `createUser` with a taken address invites it instead of
//! failing, so neither tells an administrator that an account exists.
//! Invitations expire; answered ones are deleted and the answer audited.
//!
//! An invitation belongs to the account that had the address when it was
//! sent, not to the address: an account that takes the address later (an
//! e-mail change, a new account) cannot answer it. One sent to an address
//! without an account looks the same but can never be accepted; it lapses.

use chrono::{DateTime, Duration, Utc};
use entity::tenant_membership::MembershipRole;
use entity::{invitation, school, tenant_membership, user};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events::{Event, MembershipChange};
use crate::services::admin::{DefaultReason, normalize_email, record_default};
use crate::services::audit::{self, AccountAction, AccountRecord};
use crate::services::scope::Scope;
use crate::services::tenant_context::{default_membership, membership};
use crate::unit_of_work::Outcome;

/// Most open invitations listed at once.
pub(crate) const MAX_LISTED: u64 = 200;

/// An invitation as an administrator asks for it.
#[derive(Debug, Clone)]
pub struct InvitationInput {
    /// The invitee's address (normalised here).
    pub email: String,
    /// The role they would have.
    pub role: MembershipRole,
    /// A school of the active tenant.
    pub school_id: Option<Uuid>,
}

fn already_member() -> AppError {
    AppError::Conflict("this account is already a member of the tenant: change its role instead".to_owned())
}

/// Fails with `BAD_USER_INPUT` on `field` unless `school_id` is a school of
/// the active tenant.
pub(crate) async fn ensure_school_in_tenant(
    db: &impl ConnectionTrait,
    scope: &Scope,
    field: &str,
    school_id: Uuid,
) -> AppResult<()> {
    let found = school::Entity::find_by_id(school_id)
        .filter(scope.schools())
        .count(db)
        .await?;
    if found == 0 {
        return Err(AppError::bad_input(
            field,
            "must be a school of the active tenant",
        ));
    }
    Ok(())
}

/// Invites `input.email` into the active tenant (tenant admins), or sends
/// the open invitation again with the new role, school and expiry. The
/// answer is the same whether or not the address has an account; a member
/// of the tenant already (whom the administrator can see) is `CONFLICT`.
pub async fn invite(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    ttl: Duration,
    input: InvitationInput,
) -> AppResult<invitation::Model> {
    scope.require_tenant_admin()?;
    let email = normalize_email("email", &input.email)?;
    if let Some(school_id) = input.school_id {
        ensure_school_in_tenant(db, scope, "schoolId", school_id).await?;
    }
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    if let Some(account) = &account
        && membership(db, account.id, scope.tenant_id).await?.is_some()
    {
        return Err(already_member());
    }
    let invitee = account.map(|account| account.id);
    open_invitation(db, now, scope, ttl, email, invitee, input.role, input.school_id).await
}

/// Writes (or refreshes) the open invitation of `email` — the account
/// `invitee` has it now, if any — into the active tenant and audits it.
#[expect(
    clippy::too_many_arguments,
    reason = "every argument is one field of the invitation or the context it is written in"
)]
pub(crate) async fn open_invitation(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    ttl: Duration,
    email: String,
    invitee: Option<Uuid>,
    role: MembershipRole,
    school_id: Option<Uuid>,
) -> AppResult<invitation::Model> {
    let expires_at = now + ttl;
    let existing = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(scope.tenant_id))
        .filter(invitation::Column::Email.eq(&email))
        .one(db)
        .await?;
    let saved = match existing {
        Some(existing) => {
            let mut change: invitation::ActiveModel = existing.into();
            change.invitee_id = Set(invitee);
            change.role = Set(role);
            change.school_id = Set(school_id);
            change.invited_by_id = Set(Some(scope.user_id));
            change.expires_at = Set(expires_at);
            change.updated_at = Set(now);
            change.update(db).await?
        }
        None => {
            invitation::ActiveModel {
                tenant_id: Set(scope.tenant_id),
                email: Set(email.clone()),
                invitee_id: Set(invitee),
                role: Set(role),
                school_id: Set(school_id),
                invited_by_id: Set(Some(scope.user_id)),
                expires_at: Set(expires_at),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?
        }
    };
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: Some(scope.tenant_id),
            actor_id: Some(scope.user_id),
            action: AccountAction::InviteMember,
            resource: format!("Invitation:{}", saved.id),
            details: format!(
                "{} invited as {} until {}",
                saved.email,
                role.to_value(),
                expires_at.to_rfc3339()
            ),
        },
    )
    .await?;
    tracing::info!(invitation_id = %saved.id, tenant_id = %scope.tenant_id, by = %scope.user_id, "invitation sent");
    Ok(saved)
}

/// The open (unexpired) invitations of the active tenant (tenant admins),
/// newest first.
pub(crate) async fn list_for_tenant(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
) -> AppResult<Vec<invitation::Model>> {
    scope.require_tenant_admin()?;
    Ok(invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(scope.tenant_id))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_asc(invitation::Column::Id)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// The open invitations addressed to `account`, whatever its active
/// tenant, newest first.
pub(crate) async fn list_mine(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    account: &user::Model,
) -> AppResult<Vec<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::InviteeId.eq(account.id))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_asc(invitation::Column::Id)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// The open invitation `id` addressed to `account`; anyone else's, and an
/// expired one, read as `NOT_FOUND`.
async fn mine(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    account: &user::Model,
    id: Uuid,
) -> AppResult<invitation::Model> {
    invitation::Entity::find_by_id(id)
        .filter(invitation::Column::InviteeId.eq(account.id))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "invitation",
        })
}

/// Accepts an invitation addressed to `account`: it becomes a member of the
/// tenant with the invited role and school (the default tenant when it has
/// none). Returns the new membership.
pub async fn accept(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    account: &user::Model,
    id: Uuid,
) -> AppResult<Outcome<tenant_membership::Model>> {
    let invitation = mine(db, now, account, id).await?;
    if membership(db, account.id, invitation.tenant_id).await?.is_some() {
        return Err(already_member());
    }
    // A school deleted meanwhile is already NULL; one moved to another
    // tenant cannot be, but stays out.
    let school_id = match invitation.school_id {
        Some(school_id) => school::Entity::find_by_id(school_id)
            .filter(school::Column::TenantId.eq(invitation.tenant_id))
            .one(db)
            .await?
            .map(|school| school.id),
        None => None,
    };
    let first = default_membership(db, account.id).await?.is_none();
    let joined = tenant_membership::ActiveModel {
        user_id: Set(account.id),
        tenant_id: Set(invitation.tenant_id),
        role: Set(invitation.role),
        is_default: Set(first),
        school_id: Set(school_id),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if first {
        record_default(
            db,
            now,
            account.id,
            None,
            invitation.tenant_id,
            DefaultReason::FirstMembership,
            account.id,
        )
        .await?;
    }
    invitation::Entity::delete_by_id(invitation.id).exec(db).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: Some(invitation.tenant_id),
            actor_id: Some(account.id),
            action: AccountAction::AcceptInvitation,
            resource: format!("Invitation:{}", invitation.id),
            details: format!("User:{} joined as {}", account.id, invitation.role.to_value()),
        },
    )
    .await?;
    tracing::info!(invitation_id = %invitation.id, user_id = %account.id, "invitation accepted");
    let added = Event::membership(MembershipChange::Added, account.id, joined.tenant_id, now);
    Ok(Outcome::announcing(joined, vec![added]))
}

/// Declines an invitation addressed to `account`; returns its id.
pub(crate) async fn decline(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    account: &user::Model,
    id: Uuid,
) -> AppResult<Uuid> {
    let invitation = mine(db, now, account, id).await?;
    invitation::Entity::delete_by_id(invitation.id).exec(db).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: Some(invitation.tenant_id),
            actor_id: Some(account.id),
            action: AccountAction::DeclineInvitation,
            resource: format!("Invitation:{}", invitation.id),
            details: format!("User:{} declined", account.id),
        },
    )
    .await?;
    Ok(invitation.id)
}

/// Revokes an invitation of the active tenant (tenant admins), expired or
/// not; returns its id.
pub async fn revoke(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    id: Uuid,
) -> AppResult<Uuid> {
    scope.require_tenant_admin()?;
    let invitation = invitation::Entity::find_by_id(id)
        .filter(invitation::Column::TenantId.eq(scope.tenant_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "invitation",
        })?;
    invitation::Entity::delete_by_id(invitation.id).exec(db).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: Some(scope.tenant_id),
            actor_id: Some(scope.user_id),
            action: AccountAction::RevokeInvitation,
            resource: format!("Invitation:{}", invitation.id),
            details: format!("invitation of {} revoked", invitation.email),
        },
    )
    .await?;
    Ok(invitation.id)
}

/// Deletes invitations that expired before `now`; returns how many.
pub(crate) async fn sweep_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> AppResult<u64> {
    Ok(invitation::Entity::delete_many()
        .filter(invitation::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}

/// An invitation with the name of its tenant (which the invitee, not yet a
/// member, cannot otherwise see).
#[derive(Debug, Clone)]
pub struct InvitationView {
    /// The invitation.
    pub invitation: invitation::Model,
    /// Its tenant's name.
    pub tenant_name: String,
}

/// Adds the tenant names to `invitations`, in one query.
pub(crate) async fn with_tenant_names(
    db: &impl ConnectionTrait,
    invitations: Vec<invitation::Model>,
) -> AppResult<Vec<InvitationView>> {
    let ids: std::collections::HashSet<Uuid> = invitations.iter().map(|row| row.tenant_id).collect();
    let names: std::collections::HashMap<Uuid, String> = entity::tenant::Entity::find()
        .filter(entity::tenant::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|tenant| (tenant.id, tenant.name))
        .collect();
    Ok(invitations
        .into_iter()
        .map(|invitation| InvitationView {
            tenant_name: names.get(&invitation.tenant_id).cloned().unwrap_or_default(),
            invitation,
        })
        .collect())
}

/// The account of the viewer (for their own invitations).
pub(crate) async fn account_of(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })
}
