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

use chrono::{DateTime, Utc};
use email_address::{EmailAddress, Options};
use entity::session_context_change::ContextChangeEventType;
use entity::tenant_membership::MembershipRole;
use entity::{guardian_link, school, tenant, tenant_membership, user};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityName, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::{AppError, AppResult};
use crate::services::passwords::{hash_password, verify_password};
use crate::services::scope::Scope;
use crate::services::tenancy::{MAX_TENANT_NAME, visible_tenants};
use crate::services::tenant_context::{default_membership, membership, record};
use crate::services::validation::required_name;

/// Longest accepted school name, in characters.
pub const MAX_SCHOOL_NAME: usize = 255;
/// Longest accepted user name, in characters.
pub const MAX_USER_NAME: usize = 255;
/// Longest accepted e-mail address, in characters.
pub const MAX_EMAIL: usize = 320;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD: usize = 8;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD: usize = 128;

/// Why the application chose a default tenant for a user (written in the
/// metadata of the `SET_DEFAULT_TENANT` row).
#[derive(Debug, Clone, Copy)]
enum DefaultReason {
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

/// Checks that a new password has between [`MIN_PASSWORD`] and
/// [`MAX_PASSWORD`] characters.
pub fn check_password(field: &str, password: &str) -> AppResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(AppError::bad_input(
            field,
            format!("must be between {MIN_PASSWORD} and {MAX_PASSWORD} characters (got {length})"),
        ));
    }
    Ok(())
}

/// Hashes a password on the blocking pool (Argon2 is deliberately slow).
pub async fn hash_off_thread(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)?
}

/// Verifies a password on the blocking pool.
pub async fn verify_off_thread(password: String, hash: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(AppError::internal)
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

/// Fails with `BAD_USER_INPUT` on `field` unless `school_id` is a school of
/// the active tenant.
async fn ensure_school_in_tenant(
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
    tenant::Entity::find_by_id(id)
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

async fn record_default(
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
/// valid, then hashes the password. Runs outside any transaction.
pub async fn prepare_new_user(
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
    check_password("password", &input.password)?;
    let password_hash = hash_off_thread(input.password).await?;
    Ok(NewUser {
        email,
        name,
        password_hash,
        role: input.role,
        school_id: input.school_id,
        is_super_admin: input.is_super_admin,
    })
}

/// Creates an account and its membership in the active tenant, which is its
/// default tenant (tenant admins).
pub async fn create_user(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    new: NewUser,
) -> AppResult<user::Model> {
    scope.require_tenant_admin()?;
    if let Some(school_id) = new.school_id {
        ensure_school_in_tenant(db, scope, "schoolId", school_id).await?;
    }
    ensure_email_free(db, &new.email, None).await?;
    let account = user::ActiveModel {
        email: Set(new.email),
        name: Set(Some(new.name)),
        password_hash: Set(new.password_hash),
        is_super_admin: Set(new.is_super_admin),
        school_id: Set(new.school_id),
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
    Ok(account)
}

/// Changes to an account as the client sent them; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChangesInput {
    /// New login e-mail.
    pub email: Option<String>,
    /// New display name.
    pub name: Option<String>,
    /// New school: `Some(None)` removes it.
    pub school_id: Option<Option<Uuid>>,
    /// New password.
    pub password: Option<String>,
    /// The current password (required to change one's own password).
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
    school: bool,
    password: bool,
}

/// The account `id` if the viewer may make the wanted changes to it:
/// a super admin any account; a tenant admin the members of the active
/// tenant (not super admins; e-mail and password only of accounts whose
/// every membership is in a tenant they administer); everyone their own
/// name and password. Accounts out of reach read as `NOT_FOUND`.
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
    let administers = viewer.is_super_admin || scope.as_ref().is_some_and(|scope| scope.is_tenant_admin());
    if !administers {
        if !is_self {
            return Err(AppError::forbidden(
                "only an administrator of the tenant may change another user's account",
            ));
        }
        if wants.email || wants.school {
            return Err(AppError::forbidden(
                "you may change only your own name and password: ask an administrator",
            ));
        }
    }
    if !is_self && !viewer.is_super_admin {
        if target.is_super_admin {
            return Err(AppError::forbidden(
                "only a super admin may change a super admin's account",
            ));
        }
        if (wants.email || wants.password) && !administers_every_tenant_of(db, viewer.user_id, id).await? {
            return Err(AppError::forbidden(
                "this account also belongs to tenants you do not administer: only a super admin may change its e-mail or password",
            ));
        }
    }
    Ok(target)
}

/// Whether every membership of `user_id` is in a tenant `admin_id` administers.
async fn administers_every_tenant_of(
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

/// Checks that the viewer may make the changes and that they are valid,
/// verifies the current password when a user changes their own, and hashes
/// the new one. Runs outside any transaction.
pub async fn prepare_user_update(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    id: Uuid,
    input: UserChangesInput,
) -> AppResult<UserChanges> {
    let wants = Wants {
        email: input.email.is_some(),
        school: input.school_id.is_some(),
        password: input.password.is_some(),
    };
    let target = authorize_user_update(db, viewer, id, wants).await?;
    let email = input
        .email
        .map(|email| normalize_email("email", &email))
        .transpose()?;
    let name = input
        .name
        .map(|name| required_name("name", &name, MAX_USER_NAME))
        .transpose()?;
    let mut changes = UserChanges {
        email,
        name,
        school_id: input.school_id,
        ..UserChanges::default()
    };
    if let Some(password) = input.password {
        check_password("password", &password)?;
        if id == viewer.user_id {
            let Some(current) = input.current_password else {
                return Err(AppError::bad_input(
                    "currentPassword",
                    "is required to change your own password",
                ));
            };
            if !verify_off_thread(current, target.password_hash.clone()).await? {
                return Err(AppError::bad_input(
                    "currentPassword",
                    "is not your current password",
                ));
            }
            changes.verified_hash = Some(target.password_hash);
        }
        changes.password_hash = Some(hash_off_thread(password).await?);
    }
    Ok(changes)
}

/// Applies changes prepared by [`prepare_user_update`], checking the
/// permissions again inside the transaction.
pub async fn update_user(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    id: Uuid,
    changes: UserChanges,
) -> AppResult<user::Model> {
    let wants = Wants {
        email: changes.email.is_some(),
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
    if let Some(Some(school_id)) = changes.school_id {
        match Scope::of_user(viewer) {
            Ok(scope) => ensure_school_in_tenant(db, &scope, "schoolId", school_id).await?,
            Err(_) => {
                return Err(AppError::bad_input(
                    "schoolId",
                    "must be a school of the active tenant",
                ));
            }
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
    if let Some(school_id) = changes.school_id {
        change.school_id = Set(school_id);
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

/// Deletes an account and everything it owns (super admins only; not their own).
pub async fn delete_user(db: &impl ConnectionTrait, viewer: &UserIdentity, id: Uuid) -> AppResult<Uuid> {
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
    user::Entity::delete_by_id(account.id).exec(db).await?;
    tracing::info!(user_id = %id, by = %viewer.user_id, "user deleted");
    Ok(account.id)
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

/// Adds an existing account to the active tenant (tenant admins). It becomes
/// the account's default tenant when it has none.
pub async fn add_membership(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    scope: &Scope,
    account: AccountRef,
    role: MembershipRole,
) -> AppResult<tenant_membership::Model> {
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

    #[test]
    fn passwords_are_bounded() {
        assert!(check_password("password", "1234567").is_err());
        assert!(check_password("password", "12345678").is_ok());
        assert!(check_password("password", &"x".repeat(128)).is_ok());
        assert!(check_password("password", &"x".repeat(129)).is_err());
    }
}
