//! Administration: tenants, schools, users, memberships and guardian links.
//!
//! A tenant admin manages their active tenant; a super admin manages every
//! tenant (schools, memberships and links in their active tenant, tenants and
//! accounts everywhere). Every function runs on the connection it is given —
//! the caller's transaction — so that a mutation is written whole or not at
//! all; password hashing, which is slow, happens before the transaction in
//! the `prepare_*` functions.
//!
//! Rows out of the viewer's reach read as `NOT_FOUND`; operations the viewer
//! may never perform are `FORBIDDEN` whatever the row, so neither answer
//! tells whether a row exists.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use email_address::{EmailAddress, Options};
use entity::session_context_change::ContextChangeEventType;
use entity::session_log::SessionEndReason;
use entity::tenant_membership::MembershipRole;
use entity::{guardian_link, invitation, school, session_log, tenant, tenant_membership, user};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityName, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::config::LoginThrottleSettings;
use crate::error::{AppError, AppResult};
use crate::services::audit::{self, AccountAction, AccountRecord};
use crate::services::invitations::{ensure_school_in_tenant, open_invitation};
use crate::services::passwords::{PasswordPool, check_new_password};
use crate::services::scope::Scope;
use crate::services::tenancy::{MAX_TENANT_NAME, visible_tenants};
use crate::services::tenant_context::{default_membership, membership, record};
use crate::services::throttle;
use crate::services::validation::required_name;

/// Longest accepted school name, in characters.
pub const MAX_SCHOOL_NAME: usize = 255;
/// Longest accepted user name, in characters.
pub const MAX_USER_NAME: usize = 255;
/// Longest accepted e-mail address, in characters.
pub const MAX_EMAIL: usize = 320;

/// Why the application chose a default tenant for a user (written in the
/// metadata of the `SET_DEFAULT_TENANT` row).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultReason {
    /// The user's first membership.
    FirstMembership,
    /// The default membership was removed (or its tenant deleted).
    DefaultRemoved,
}

impl DefaultReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::FirstMembership => "first_membership",
            Self::DefaultRemoved => "default_membership_removed",
        }
    }
}

// ---------------------------------------------------------------- validation

/// Trims and lower-cases an e-mail address and checks its format
/// (`name@example.org`: a top-level domain, no display text, no IP literal).
pub fn normalize_email(field: &str, raw: &str) -> AppResult<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    let length = email.chars().count();
    if length > MAX_EMAIL {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {MAX_EMAIL} characters (got {length})"),
        ));
    }
    let options = Options::default()
        .with_required_tld()
        .without_display_text()
        .without_domain_literal();
    EmailAddress::parse_with_options(&email, options).map_err(|_| {
        AppError::bad_input(field, "is not a valid e-mail address (expected name@example.org)")
    })?;
    Ok(email)
}

/// Turns a unique-constraint violation into `CONFLICT` with `message`.
fn conflict_on_unique(error: DbErr, message: impl FnOnce() -> String) -> AppError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(message()),
        _ => AppError::from(error),
    }
}

fn email_taken() -> String {
    "a user with this e-mail address already exists".to_owned()
}

/// Fails with `CONFLICT` when another account (than `except`) uses `email`.
async fn ensure_email_free(db: &impl ConnectionTrait, email: &str, except: Option<Uuid>) -> AppResult<()> {
    let mut query = user::Entity::find().filter(user::Column::Email.eq(email));
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(AppError::Conflict(email_taken()));
    }
    Ok(())
}

// ------------------------------------------------------------------- tenants

/// The tenant `tenant_id` if the viewer administers it: a super admin any
/// tenant, anyone else a tenant where they are an admin. `NOT_FOUND` when
/// the viewer cannot see the tenant, `FORBIDDEN` when they can but are not
/// its administrator.
async fn administered_tenant(
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
    viewer: &UserIdentity,
    id: Uuid,
    name: &str,
) -> AppResult<tenant::Model> {
    let tenant = administered_tenant(db, viewer, id).await?;
    let name = required_name("name", name, MAX_TENANT_NAME)?;
    let mut change: tenant::ActiveModel = tenant.into();
    change.name = Set(name);
    Ok(change.update(db).await?)
}

/// Deletes a tenant and everything in it (super admins only). Members whose
/// default tenant it was get their oldest remaining membership as default.
pub async fn delete_tenant(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
) -> AppResult<Uuid> {
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
    Ok(id)
}

/// Gives each of `user_ids` (who just lost their default membership, in
/// `from_tenant`) their oldest remaining membership as default, recorded as
/// `SET_DEFAULT_TENANT`. Users without another membership keep none.
async fn promote_defaults(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_ids: &[Uuid],
    from_tenant: Uuid,
    by: Uuid,
) -> AppResult<()> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let remaining = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(tenant_membership::Column::CreatedAt)
        .order_by_asc(tenant_membership::Column::Id)
        .all(db)
        .await?;
    let mut chosen: HashMap<Uuid, tenant_membership::Model> = HashMap::new();
    for row in remaining {
        chosen.entry(row.user_id).or_insert(row);
    }
    for row in chosen.into_values() {
        tenant_membership::Entity::update_many()
            .col_expr(tenant_membership::Column::IsDefault, Expr::value(true))
            .col_expr(tenant_membership::Column::UpdatedAt, Expr::value(now))
            .filter(tenant_membership::Column::Id.eq(row.id))
            .exec(db)
            .await?;
        record_default(
            db,
            now,
            row.user_id,
            Some(from_tenant),
            row.tenant_id,
            DefaultReason::DefaultRemoved,
            by,
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn record_default(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_id: Uuid,
    from: Option<Uuid>,
    to: Uuid,
    reason: DefaultReason,
    by: Uuid,
) -> AppResult<()> {
    record(
        db,
        now,
        user_id,
        to,
        ContextChangeEventType::SetDefaultTenant,
        json!({
            "fromTenantId": from,
            "toTenantId": to,
            "reason": reason.as_str(),
            "byUserId": by,
        }),
    )
    .await
}

// ------------------------------------------------------------------- schools

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
pub async fn create_school(db: &impl ConnectionTrait, scope: &Scope, name: &str) -> AppResult<school::Model> {
    scope.require_tenant_admin()?;
    let name = required_name("name", name, MAX_SCHOOL_NAME)?;
    ensure_school_name_free(db, scope, &name, None).await?;
    school::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        name: Set(name.clone()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| conflict_on_unique(error, || school_name_taken(&name)))
}

/// Renames a school of the active tenant (tenant admins).
pub async fn update_school(
    db: &impl ConnectionTrait,
    scope: &Scope,
    id: Uuid,
    name: &str,
) -> AppResult<school::Model> {
    scope.require_tenant_admin()?;
    let school = find_school(db, scope, id).await?;
    let name = required_name("name", name, MAX_SCHOOL_NAME)?;
    ensure_school_name_free(db, scope, &name, Some(id)).await?;
    let mut change: school::ActiveModel = school.into();
    change.name = Set(name.clone());
    change
        .update(db)
        .await
        .map_err(|error| conflict_on_unique(error, || school_name_taken(&name)))
}

/// Deletes a school of the active tenant (tenant admins); its users keep
/// their accounts, without a school.
pub async fn delete_school(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<Uuid> {
    scope.require_tenant_admin()?;
    let school = find_school(db, scope, id).await?;
    school::Entity::delete_by_id(school.id).exec(db).await?;
    Ok(school.id)
}

// --------------------------------------------------------------------- users

/// Which users to list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only those with this role in the active tenant.
    pub role: Option<MembershipRole>,
    /// Only those whose e-mail sorts after this one (the last of the
    /// previous page; e-mails are unique).
    pub after_email: Option<String>,
}

/// The users the viewer may see, by e-mail, at most `limit`.
pub async fn list_users(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: UserFilter,
    limit: u64,
) -> AppResult<Vec<user::Model>> {
    let mut query = user::Entity::find()
        .filter(scope.users())
        .order_by_asc(user::Column::Email)
        .limit(limit);
    if let Some(after) = filter.after_email {
        query = query.filter(user::Column::Email.gt(after.trim().to_lowercase()));
    }
    if let Some(role) = filter.role {
        let with_role = Query::select()
            .column(tenant_membership::Column::UserId)
            .from(tenant_membership::Entity.table_ref())
            .cond_where(scope.memberships())
            .and_where(tenant_membership::Column::Role.eq(role))
            .to_owned();
        query = query.filter(user::Column::Id.in_subquery(with_role));
    }
    Ok(query.all(db).await?)
}

/// One user the viewer may see.
pub async fn find_user(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(id)
        .filter(scope.users())
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })
}

/// A new account as the client sent it.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    /// Login e-mail (trimmed and lower-cased here).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Initial password.
    pub password: String,
    /// Role in the active tenant.
    pub role: MembershipRole,
    /// A school of the active tenant.
    pub school_id: Option<Uuid>,
    /// Whether the account administers the whole system.
    pub is_super_admin: bool,
}

/// A validated new account with its password hashed, ready for
/// [`create_user`].
#[derive(Debug, Clone)]
pub struct NewUser {
    email: String,
    name: String,
    password_hash: String,
    role: MembershipRole,
    school_id: Option<Uuid>,
    is_super_admin: bool,
}

/// Checks that the viewer may create the account and that the input is
/// valid, then hashes the password on `passwords`. Runs outside any
/// transaction.
pub async fn prepare_new_user(
    passwords: &PasswordPool,
    scope: &Scope,
    viewer: &UserIdentity,
    input: NewUserInput,
) -> AppResult<NewUser> {
    scope.require_tenant_admin()?;
    if input.is_super_admin && !viewer.is_super_admin {
        return Err(AppError::forbidden("only a super admin may create a super admin"));
    }
    let email = normalize_email("email", &input.email)?;
    let name = required_name("name", &input.name, MAX_USER_NAME)?;
    check_new_password("password", &input.password, &email, Some(&name))?;
    // Hashed even when the address turns out to be taken, so that the
    // answer takes as long either way.
    let password_hash = passwords.hash(input.password).await?;
    Ok(NewUser {
        email,
        name,
        password_hash,
        role: input.role,
        school_id: input.school_id,
        is_super_admin: input.is_super_admin,
    })
}

/// What `createUser` did.
#[derive(Debug, Clone)]
pub enum CreatedAccount {
    /// A new account, a member of the active tenant.
    Created(user::Model),
    /// The address has an account already: it was invited instead (its
    /// name, password and rights untouched), exactly as `inviteMember` would.
    Invited(invitation::Model),
}

/// Creates an account and its membership in the active tenant, which is its
/// default tenant (tenant admins). When the address has an account already,
/// invites it instead (see [`CreatedAccount::Invited`]); a member of the
/// tenant already is `CONFLICT`, as the administrator can see them anyway.
pub async fn create_user(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    invitation_ttl: Duration,
    new: NewUser,
) -> AppResult<CreatedAccount> {
    scope.require_tenant_admin()?;
    if let Some(school_id) = new.school_id {
        ensure_school_in_tenant(db, scope, "schoolId", school_id).await?;
    }
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(&new.email))
        .one(db)
        .await?;
    if let Some(existing) = existing {
        if membership(db, existing.id, scope.tenant_id).await?.is_some() {
            return Err(AppError::Conflict(
                "this account is already a member of the tenant: change its role instead".to_owned(),
            ));
        }
        let invited = open_invitation(
            db,
            now,
            scope,
            invitation_ttl,
            new.email,
            Some(existing.id),
            new.role,
            new.school_id,
        )
        .await?;
        return Ok(CreatedAccount::Invited(invited));
    }
    let account = user::ActiveModel {
        email: Set(new.email),
        name: Set(Some(new.name)),
        password_hash: Set(new.password_hash),
        is_super_admin: Set(new.is_super_admin),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| conflict_on_unique(error, email_taken))?;
    tenant_membership::ActiveModel {
        user_id: Set(account.id),
        tenant_id: Set(scope.tenant_id),
        role: Set(new.role),
        is_default: Set(true),
        school_id: Set(new.school_id),
        ..Default::default()
    }
    .insert(db)
    .await?;
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
    tracing::info!(user_id = %account.id, tenant_id = %scope.tenant_id, by = %scope.user_id, "user created");
    Ok(CreatedAccount::Created(account))
}

/// Changes to an account as the client sent them; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChangesInput {
    /// New login e-mail.
    pub email: Option<String>,
    /// New display name.
    pub name: Option<String>,
    /// New school in the active tenant: `Some(None)` removes it.
    pub school_id: Option<Option<Uuid>>,
    /// New password.
    pub password: Option<String>,
    /// The current password (required to change one's own e-mail or password).
    pub current_password: Option<String>,
}

/// Validated changes, the new password hashed, ready for [`update_user`].
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    email: Option<String>,
    name: Option<String>,
    school_id: Option<Option<Uuid>>,
    password_hash: Option<String>,
    /// The hash the current password was verified against; the update fails
    /// if the password changed meanwhile.
    verified_hash: Option<String>,
}

impl UserChanges {
    fn touches_credentials(&self) -> bool {
        self.email.is_some() || self.password_hash.is_some()
    }
}

/// What an update asks to change, for the permission check.
#[derive(Debug, Clone, Copy)]
struct Wants {
    email: bool,
    name: bool,
    school: bool,
    password: bool,
}

/// The account `id` if the viewer may make the wanted changes to it.
///
/// - Everyone: their own name, e-mail and password (the last two with the
///   current password). Not their own school, which is an administrator's.
/// - A tenant admin: the school of a member of the active tenant (it is
///   that tenant's membership); name, e-mail and password only of accounts
///   that belong to no tenant they do not administer, and never a super
///   admin's.
/// - A super admin: anything.
///
/// Accounts out of reach read as `NOT_FOUND`.
async fn authorize_user_update(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    id: Uuid,
    wants: Wants,
) -> AppResult<user::Model> {
    let is_self = id == viewer.user_id;
    let scope = Scope::of_user(viewer).ok();
    let mut query = user::Entity::find_by_id(id);
    if !viewer.is_super_admin && !is_self {
        let Some(scope) = &scope else {
            return Err(AppError::NotFound { resource: "user" });
        };
        query = query.filter(scope.users());
    }
    let target = query
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })?;
    if viewer.is_super_admin {
        return Ok(target);
    }
    let administers = scope.as_ref().is_some_and(Scope::is_tenant_admin);
    if wants.school && !administers {
        return Err(AppError::forbidden(
            "only an administrator of the tenant may change a member's school",
        ));
    }
    if is_self {
        return Ok(target);
    }
    if !administers {
        return Err(AppError::forbidden(
            "only an administrator of the tenant may change another user's account",
        ));
    }
    if (wants.email || wants.name || wants.password) && target.is_super_admin {
        return Err(AppError::forbidden(
            "only a super admin may change a super admin's account",
        ));
    }
    if (wants.email || wants.name || wants.password)
        && !administers_every_tenant_of(db, viewer.user_id, id).await?
    {
        return Err(AppError::forbidden(
            "this account also belongs to tenants you do not administer: only the account itself or a super admin may change its name, e-mail or password",
        ));
    }
    Ok(target)
}

/// Whether every membership of `user_id` is in a tenant `admin_id` administers.
pub(crate) async fn administers_every_tenant_of(
    db: &impl ConnectionTrait,
    admin_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    let administered = Query::select()
        .column(tenant_membership::Column::TenantId)
        .from(tenant_membership::Entity.table_ref())
        .and_where(tenant_membership::Column::UserId.eq(admin_id))
        .and_where(tenant_membership::Column::Role.eq(MembershipRole::Admin))
        .to_owned();
    let elsewhere = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::TenantId.not_in_subquery(administered))
        .count(db)
        .await?;
    Ok(elsewhere == 0)
}

/// What checking a password needs: the hashing pool, the throttle and the
/// client's address.
#[derive(Debug, Clone, Copy)]
pub struct PasswordCheck<'a> {
    /// Where Argon2 runs.
    pub passwords: &'a PasswordPool,
    /// Where failures are counted (its own short transactions).
    pub db: &'a DatabaseConnection,
    /// The throttle's limits.
    pub throttle: &'a LoginThrottleSettings,
    /// Now.
    pub now: DateTime<Utc>,
    /// The client's address, if known.
    pub address: Option<&'a str>,
}

/// Checks `current` against `account`'s password, throttled like a login
/// (the same counts: a guess here is a guess at the login).
pub async fn verify_current_password(
    check: PasswordCheck<'_>,
    account: &user::Model,
    current: String,
) -> AppResult<bool> {
    let keys = throttle::keys_for(&account.email, check.address);
    let admission = throttle::admit(check.db, check.throttle, check.now, keys).await?;
    let matches = check
        .passwords
        .verify(current, account.password_hash.clone())
        .await?;
    if matches {
        throttle::succeeded(check.db, &admission).await?;
    } else {
        throttle::failed(check.db, check.throttle, check.now, &admission, Some(account.id)).await?;
    }
    Ok(matches)
}

/// Checks that the viewer may make the changes and that they are valid,
/// verifies the current password when a user changes their own e-mail or
/// password (throttled), and hashes the new one. Runs outside any
/// transaction.
pub async fn prepare_user_update(
    check: PasswordCheck<'_>,
    viewer: &UserIdentity,
    id: Uuid,
    input: UserChangesInput,
) -> AppResult<UserChanges> {
    let wants = Wants {
        email: input.email.is_some(),
        name: input.name.is_some(),
        school: input.school_id.is_some(),
        password: input.password.is_some(),
    };
    let target = authorize_user_update(check.db, viewer, id, wants).await?;
    let email = input
        .email
        .map(|email| normalize_email("email", &email))
        .transpose()?;
    let name = input
        .name
        .map(|name| required_name("name", &name, MAX_USER_NAME))
        .transpose()?;
    if let Some(password) = &input.password {
        let email = email.as_deref().unwrap_or(&target.email);
        let name = name.as_deref().or(target.name.as_deref());
        check_new_password("password", password, email, name)?;
    }
    let mut changes = UserChanges {
        email,
        name,
        school_id: input.school_id,
        ..UserChanges::default()
    };
    if id == viewer.user_id && (changes.email.is_some() || input.password.is_some()) {
        let Some(current) = input.current_password else {
            return Err(AppError::bad_input(
                "currentPassword",
                "is required to change your own e-mail address or password",
            ));
        };
        if !verify_current_password(check, &target, current).await? {
            return Err(AppError::bad_input(
                "currentPassword",
                "is not your current password",
            ));
        }
        changes.verified_hash = Some(target.password_hash);
    }
    if let Some(password) = input.password {
        changes.password_hash = Some(check.passwords.hash(password).await?);
    }
    Ok(changes)
}

/// Applies changes prepared by [`prepare_user_update`], checking the
/// permissions again inside the transaction. The school is the account's
/// in the viewer's active tenant.
pub async fn update_user(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    id: Uuid,
    changes: UserChanges,
) -> AppResult<user::Model> {
    let wants = Wants {
        email: changes.email.is_some(),
        name: changes.name.is_some(),
        school: changes.school_id.is_some(),
        password: changes.password_hash.is_some(),
    };
    let target = authorize_user_update(db, viewer, id, wants).await?;
    if let Some(verified) = &changes.verified_hash
        && *verified != target.password_hash
    {
        return Err(AppError::Conflict(
            "the password changed meanwhile: try again with the new current password".to_owned(),
        ));
    }
    if let Some(school_id) = changes.school_id {
        let Ok(scope) = Scope::of_user(viewer) else {
            return Err(AppError::bad_input(
                "schoolId",
                "must be a school of the active tenant",
            ));
        };
        if let Some(school_id) = school_id {
            ensure_school_in_tenant(db, &scope, "schoolId", school_id).await?;
        }
        let member = membership(db, id, scope.tenant_id).await?.ok_or_else(|| {
            AppError::bad_input("schoolId", "the user is not a member of the active tenant")
        })?;
        if member.school_id != school_id {
            let mut change: tenant_membership::ActiveModel = member.into();
            change.school_id = Set(school_id);
            change.update(db).await?;
        }
    }
    if let Some(email) = &changes.email {
        ensure_email_free(db, email, Some(id)).await?;
    }
    let credentials = changes.touches_credentials();
    let mut change: user::ActiveModel = target.clone().into();
    let mut changed = false;
    if let Some(email) = changes.email {
        change.email = Set(email);
        changed = true;
    }
    if let Some(name) = changes.name {
        change.name = Set(Some(name));
        changed = true;
    }
    if let Some(hash) = changes.password_hash {
        change.password_hash = Set(hash);
        changed = true;
    }
    if !changed {
        return Ok(target);
    }
    let updated = change
        .update(db)
        .await
        .map_err(|error| conflict_on_unique(error, email_taken))?;
    if credentials {
        tracing::info!(user_id = %id, by = %viewer.user_id, "account credentials changed");
    }
    Ok(updated)
}

/// Deletes an account and what it owns (super admins only; not their own).
/// Its open login sessions end (`revoked`) and stay, with its tenant-context
/// trail, as the record of what it did; the deletion is audited. Returns
/// the id and the login sessions it ended.
pub async fn delete_user(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
) -> AppResult<(Uuid, Vec<session_log::Model>)> {
    if !viewer.is_super_admin {
        return Err(AppError::forbidden("only a super admin may delete accounts"));
    }
    if id == viewer.user_id {
        return Err(AppError::Conflict(
            "you cannot delete your own account".to_owned(),
        ));
    }
    let account = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })?;
    let open = session_log::Entity::find()
        .filter(session_log::Column::UserId.eq(id))
        .filter(session_log::Column::LogoutAt.is_null())
        .all(db)
        .await?;
    session_log::Entity::update_many()
        .col_expr(session_log::Column::LogoutAt, Expr::value(now))
        .col_expr(
            session_log::Column::EndReason,
            Expr::value(SessionEndReason::Revoked),
        )
        .col_expr(session_log::Column::UpdatedAt, Expr::value(now))
        .filter(session_log::Column::UserId.eq(id))
        .filter(session_log::Column::LogoutAt.is_null())
        .exec(db)
        .await?;
    user::Entity::delete_by_id(account.id).exec(db).await?;
    audit::write(
        db,
        now,
        AccountRecord {
            tenant_id: None,
            actor_id: Some(viewer.user_id),
            action: AccountAction::DeleteUser,
            resource: format!("User:{id}"),
            details: format!(
                "account {} deleted with its memberships, guardian links and sessions; {} login session(s) ended",
                account.email,
                open.len()
            ),
        },
    )
    .await?;
    tracing::info!(user_id = %id, by = %viewer.user_id, "user deleted");
    Ok((account.id, open))
}

// --------------------------------------------------------------- memberships

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
) -> AppResult<tenant_membership::Model> {
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
    Ok(added)
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
pub async fn update_membership_role(
    db: &impl ConnectionTrait,
    scope: &Scope,
    user_id: Uuid,
    role: MembershipRole,
) -> AppResult<tenant_membership::Model> {
    scope.require_tenant_admin()?;
    let current = tenant_membership_of(db, scope, user_id).await?;
    if current.role == role {
        return Ok(current);
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
    Ok(change.update(db).await?)
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
) -> AppResult<Uuid> {
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
    Ok(current.id)
}

// ------------------------------------------------------------ guardian links

/// Which guardian links to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardianLinkFilter {
    /// Only this guardian's.
    pub guardian_id: Option<Uuid>,
    /// Only those supervising this user.
    pub user_id: Option<Uuid>,
}

/// The guardian links the viewer may see, oldest first, at most `limit`.
pub async fn list_guardian_links(
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
pub async fn create_guardian_link(
    db: &impl ConnectionTrait,
    scope: &Scope,
    guardian_id: Uuid,
    user_id: Uuid,
) -> AppResult<guardian_link::Model> {
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
    guardian_link::ActiveModel {
        tenant_id: Set(scope.tenant_id),
        guardian_id: Set(guardian_id),
        user_id: Set(user_id),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|error| conflict_on_unique(error, link_exists))
}

/// Deletes a guardian link of the active tenant (tenant admins).
pub async fn delete_guardian_link(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<Uuid> {
    scope.require_tenant_admin()?;
    let link = guardian_link::Entity::find_by_id(id)
        .filter(scope.guardian_links())
        .one(db)
        .await?
        .ok_or(AppError::NotFound {
            resource: "guardian link",
        })?;
    guardian_link::Entity::delete_by_id(link.id).exec(db).await?;
    Ok(link.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lower_cased_and_checked() {
        assert_eq!(
            normalize_email("email", "  Ada.Lovelace@Example.ORG ").ok(),
            Some("ada.lovelace@example.org".to_owned())
        );
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "Ada <ada@example.org>",
            "ada@[127.0.0.1]",
        ] {
            assert!(normalize_email("email", bad).is_err(), "{bad:?} accepted");
        }
    }
}
