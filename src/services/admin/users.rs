//! Accounts: listing, creating, changing and deleting them, and checking their passwords.

use super::*;

/// Which users to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserFilter {
    /// Only those with this role in the active tenant.
    pub role: Option<MembershipRole>,
    /// Only those whose e-mail sorts after this one (the last of the
    /// previous page; e-mails are unique).
    pub after_email: Option<String>,
}

/// The users the viewer may see, by e-mail, at most `limit`.
pub(crate) async fn list_users(
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
pub(crate) async fn find_user(db: &impl ConnectionTrait, scope: &Scope, id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(id)
        .filter(scope.users())
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })
}

/// A new account as the client sent it.
#[derive(Debug, Clone)]
pub(crate) struct NewUserInput {
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
pub(crate) struct NewUser {
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
pub(crate) async fn prepare_new_user(
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
pub(crate) enum CreatedAccount {
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
pub(crate) async fn create_user(
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
    let taken = user::Entity::find()
        .filter(user::Column::Email.eq(&new.email))
        .count(db)
        .await?
        > 0;
    if taken {
        // Exactly what `inviteMember` does with the address.
        let input = InvitationInput {
            email: new.email,
            role: new.role,
            school_id: new.school_id,
        };
        return Ok(CreatedAccount::Invited(
            invite(db, now, scope, invitation_ttl, input).await?,
        ));
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
pub(crate) struct UserChangesInput {
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
pub(crate) struct UserChanges {
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
pub(crate) struct PasswordCheck<'a> {
    /// Where Argon2 runs.
    pub passwords: &'a PasswordPool,
    /// Where failures are counted (units of work of their own, around the
    /// check).
    pub state: &'a AppState,
    /// The throttle's limits.
    pub throttle: &'a LoginThrottleSettings,
    /// Now.
    pub now: DateTime<Utc>,
    /// The client's address, if known.
    pub address: Option<&'a str>,
}

/// Checks `current` against `account`'s password, throttled like a login
/// (the same counts: a guess here is a guess at the login).
pub(crate) async fn verify_current_password(
    check: PasswordCheck<'_>,
    account: &user::Model,
    current: String,
) -> AppResult<bool> {
    let keys = throttle::keys_for(&account.email, check.address);
    let admission = write(check.state, async |txn| {
        Ok(Outcome::quiet(
            throttle::admit(txn, check.throttle, check.now, keys).await?,
        ))
    })
    .await?;
    let matches = check
        .passwords
        .verify(current, account.password_hash.clone())
        .await?;
    write(check.state, async |txn| {
        if matches {
            throttle::succeeded(txn, &admission).await?;
        } else {
            throttle::failed(txn, check.throttle, check.now, &admission, Some(account.id)).await?;
        }
        Ok(Outcome::quiet(()))
    })
    .await?;
    Ok(matches)
}

/// Checks that the viewer may make the changes and that they are valid,
/// verifies the current password when a user changes their own e-mail or
/// password (throttled), and hashes the new one. Runs outside any
/// transaction.
pub(crate) async fn prepare_user_update(
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
    let target = authorize_user_update(&check.state.db, viewer, id, wants).await?;
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
/// in the viewer's active tenant. A new password ends the account's other
/// login sessions: whoever knew the old one is logged out everywhere.
pub(crate) async fn update_user(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
    changes: UserChanges,
) -> AppResult<Outcome<user::Model>> {
    let mut events = Vec::new();
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
            events.push(Event::membership(
                MembershipChange::SchoolChanged,
                id,
                scope.tenant_id,
                now,
            ));
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
        return Ok(Outcome::announcing(target, events));
    }
    let password_changed = changes_password(&change);
    let updated = change
        .update(db)
        .await
        .map_err(|error| conflict_on_unique(error, email_taken))?;
    if credentials {
        tracing::info!(user_id = %id, by = %viewer.user_id, "account credentials changed");
    }
    events.push(Event::account(AccountChange::Updated, id, now));
    if password_changed {
        let keep = (id == viewer.user_id).then_some(viewer.login_session_id);
        let ended = crate::services::login_sessions::revoke_others(db, now, id, keep).await?;
        events.extend(
            ended
                .iter()
                .map(|log| ended_event(log.id, log.user_id, SessionEndReason::Revoked, None, now)),
        );
    }
    Ok(Outcome::announcing(updated, events))
}

fn changes_password(change: &user::ActiveModel) -> bool {
    change.password_hash.is_set()
}

/// Deletes an account and what it owns (super admins only; not their own).
/// Its open login sessions end (`revoked`) and stay, with its tenant-context
/// trail, as the record of what it did; the deletion is audited. Returns
/// the id.
pub(crate) async fn delete_user(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    viewer: &UserIdentity,
    id: Uuid,
) -> AppResult<Outcome<Uuid>> {
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
    // Its own sessions, and those it supervised, go with it.
    let sessions_gone = crate::services::sessions::deleted_along(
        db,
        sea_orm::sea_query::Condition::any()
            .add(entity::session::Column::UserId.eq(id))
            .add(entity::session::Column::GuardianId.eq(id)),
        now,
    )
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
    let mut events: Vec<Event> = open
        .iter()
        .map(|log| ended_event(log.id, log.user_id, SessionEndReason::Revoked, None, now))
        .collect();
    events.extend(sessions_gone);
    events.push(Event::account(AccountChange::Deleted, account.id, now));
    Ok(Outcome::announcing(account.id, events))
}
