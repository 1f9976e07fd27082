//! Super administrators from the command line: the first one of a fresh
//! install, promoting or demoting later ones, and lifting a lockout when no
//! super admin can log in. Each change is audited
//! (with no actor: the command line is whoever runs the server).

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use crate::error::{AppError, AppResult};
use crate::events::{AccountChange, Event};
use crate::services::admin::{MAX_USER_NAME, normalize_email};
use crate::services::audit::{self, AccountAction, AccountRecord};
use crate::services::passwords::{check_new_password, hash_password};
use crate::services::throttle::{self, ThrottleKey};
use crate::services::validation::required_name;
use crate::unit_of_work::Outcome;

/// Creates a super admin with `password` (checked by the password rules).
/// An address that has an account already is refused: promote it instead.
pub(crate) async fn create_admin(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    email: &str,
    name: Option<&str>,
    password: &str,
) -> AppResult<user::Model> {
    let email = normalize_email("--email", email)?;
    let name = name
        .map(|name| required_name("--name", name, MAX_USER_NAME))
        .transpose()?;
    check_new_password("password", password, &email, name.as_deref())?;
    if find(db, &email).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "{email} has an account already: make it a super admin with `session-manager promote --email {email}`"
        )));
    }
    let account = user::ActiveModel {
        email: Set(email),
        name: Set(name),
        password_hash: Set(hash_password(password)?),
        is_super_admin: Set(true),
        ..Default::default()
    }
    .insert(db)
    .await?;
    record(
        db,
        now,
        AccountAction::CreateSuperAdmin,
        &account,
        "created from the command line",
    )
    .await?;
    Ok(account)
}

/// Makes the account of `email` a super admin; whether it changed.
pub async fn promote(db: &impl ConnectionTrait, now: DateTime<Utc>, email: &str) -> AppResult<Outcome<bool>> {
    let account = existing(db, email).await?;
    if account.is_super_admin {
        return Ok(Outcome::quiet(false));
    }
    let mut change: user::ActiveModel = account.into();
    change.is_super_admin = Set(true);
    let account = change.update(db).await?;
    record(
        db,
        now,
        AccountAction::PromoteSuperAdmin,
        &account,
        "made a super admin from the command line",
    )
    .await?;
    let promoted = Event::account(AccountChange::Promoted, account.id, now);
    Ok(Outcome::announcing(true, vec![promoted]))
}

/// Takes super-admin rights from the account of `email`; whether it
/// changed. The last super admin stays one: a system without any can be
/// administered only through SQL.
pub async fn demote(db: &impl ConnectionTrait, now: DateTime<Utc>, email: &str) -> AppResult<Outcome<bool>> {
    let account = existing(db, email).await?;
    if !account.is_super_admin {
        return Ok(Outcome::quiet(false));
    }
    // The super admins' rows are locked (PostgreSQL), so that two demotions
    // at once cannot both leave the other as the last one and remove it.
    let others = user::Entity::find()
        .filter(user::Column::IsSuperAdmin.eq(true))
        .lock_exclusive()
        .all(db)
        .await?
        .into_iter()
        .filter(|admin| admin.id != account.id)
        .count();
    if others == 0 {
        return Err(AppError::Conflict(
            "this is the last super admin: create or promote another one first".to_owned(),
        ));
    }
    let mut change: user::ActiveModel = account.into();
    change.is_super_admin = Set(false);
    let account = change.update(db).await?;
    record(
        db,
        now,
        AccountAction::DemoteSuperAdmin,
        &account,
        "super-admin rights removed from the command line",
    )
    .await?;
    let demoted = Event::account(AccountChange::Demoted, account.id, now);
    Ok(Outcome::announcing(true, vec![demoted]))
}

/// Lifts the lockout of an e-mail address and/or the slow-down of a client
/// address, from the command line; whether anything was locked.
pub async fn unlock(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    email: Option<&str>,
    address: Option<&str>,
) -> AppResult<bool> {
    let mut lifted = false;
    let mut what = Vec::new();
    if let Some(email) = email {
        let email = normalize_email("--email", email)?;
        lifted |= throttle::clear(db, &ThrottleKey::email(&email)).await?;
        what.push(email);
    }
    if let Some(address) = address {
        lifted |= throttle::clear(db, &ThrottleKey::address(address)).await?;
        what.push(address.trim().to_owned());
    }
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: None,
            actor_id: None,
            action: AccountAction::UnlockLogin,
            resource: "Login".to_owned(),
            details: format!("{} unlocked from the command line", what.join(" and ")),
        },
    )
    .await?;
    Ok(lifted)
}

async fn find(db: &impl ConnectionTrait, email: &str) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

async fn existing(db: &impl ConnectionTrait, email: &str) -> AppResult<user::Model> {
    let email = normalize_email("--email", email)?;
    find(db, &email)
        .await?
        .ok_or_else(|| AppError::bad_input("--email", format!("no account has the address {email}")))
}

async fn record(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    action: AccountAction,
    account: &user::Model,
    details: &str,
) -> AppResult<()> {
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: None,
            actor_id: None,
            action,
            resource: format!("User:{}", account.id),
            details: format!("{} {details}", account.email),
        },
    )
    .await
}
