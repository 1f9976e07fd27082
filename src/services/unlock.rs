//! Lifting login lockouts, by an administrator.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::auth::UserIdentity;
use crate::error::{AppError, AppResult};
use crate::services::admin::{administers_every_tenant_of, normalize_email};
use crate::services::audit::{self, AccountAction, AccountRecord};
use crate::services::scope::Scope;
use crate::services::throttle::{self, ThrottleKey};

/// Lifts the lockout of `email`. A super admin: any address. A tenant
/// admin: the address of a member of the active tenant (others read as
/// `NOT_FOUND`, as the member list would) whose every tenant they
/// administer and who is no super admin — otherwise an administrator could
/// wipe the count of someone else's account between guesses.
pub(crate) async fn unlock_email(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    email: &str,
) -> AppResult<()> {
    let email = normalize_email("email", email)?;
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    let tenant_id = if viewer.is_super_admin {
        viewer.tenant_id
    } else {
        let scope = Scope::of_user(viewer)?;
        scope.require_tenant_admin()?;
        let member = match &account {
            Some(account) => {
                user::Entity::find_by_id(account.id)
                    .filter(scope.tenant_users())
                    .count(db)
                    .await?
                    > 0
            }
            None => false,
        };
        let Some(target) = account.as_ref().filter(|_| member) else {
            return Err(AppError::NotFound { resource: "user" });
        };
        if target.is_super_admin || !administers_every_tenant_of(db, viewer.user_id, target.id).await? {
            return Err(AppError::forbidden(
                "this account also belongs to tenants you do not administer (or is a super admin's): only a super admin may lift its lockout",
            ));
        }
        Some(scope.tenant_id)
    };
    let lifted = throttle::clear(db, &ThrottleKey::email(&email)).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id,
            actor_id: Some(viewer.user_id),
            action: AccountAction::UnlockLogin,
            resource: account.map_or_else(|| "Login".to_owned(), |account| format!("User:{}", account.id)),
            details: format!(
                "login of {email} unlocked{}",
                if lifted { "" } else { " (it was not locked)" }
            ),
        },
    )
    .await?;
    Ok(())
}

/// Lifts the slow-down of a client address (super admins).
pub(crate) async fn unlock_address(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    address: &str,
) -> AppResult<()> {
    if !viewer.is_super_admin {
        return Err(AppError::forbidden(
            "only a super admin may lift the slow-down of a client address",
        ));
    }
    let address = address.trim();
    if address.is_empty() || address.len() > 64 {
        return Err(AppError::bad_input("address", "must be an IP address"));
    }
    let lifted = throttle::clear(db, &ThrottleKey::address(address)).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: None,
            actor_id: Some(viewer.user_id),
            action: AccountAction::UnlockLogin,
            resource: "Login".to_owned(),
            details: format!(
                "logins from {address} no longer slowed down{}",
                if lifted { "" } else { " (they were not)" }
            ),
        },
    )
    .await?;
    Ok(())
}
