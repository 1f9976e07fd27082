//! Administration: the queries and mutations of the admin portal for
//! tenants, schools, users, memberships and guardian links.
//!
//! Every mutation runs in one transaction. The rules live in
//! [`crate::services::admin`]; this module only translates.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, Union};
use chrono::{DateTime, Duration, Utc};
use entity::{guardian_link, user};
use sea_orm::DbErr;
use uuid::Uuid;

use super::{Invitation, Membership, MembershipRole, School, Tenant, User};
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{
    DbLoader, GuardiansOfUser, MembershipsOfUser, SchoolById, SchoolsOfTenant, SupervisedUsersOfUser,
    TenantById, UserById,
};
use crate::services::admin::{
    self as service, AccountRef, CreatedAccount, GuardianLinkFilter, NewUserInput, PasswordCheck,
    UserChangesInput, UserFilter,
};
use crate::services::invitations::with_tenant_names;
use crate::unit_of_work::{Outcome, write};

/// A guardian supervising a user in a tenant.
pub struct GuardianLink(pub guardian_link::Model);

/// A guardian supervising a user in a tenant.
#[Object(serial)]
impl GuardianLink {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The tenant in which the link applies.
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
    /// The guardian's id.
    async fn guardian_id(&self) -> Uuid {
        self.0.guardian_id
    }
    /// The supervising user.
    async fn guardian(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx.load_one(UserById(self.0.guardian_id)).await?.map(User))
    }
    /// The supervised user's id.
    async fn user_id(&self) -> Uuid {
        self.0.user_id
    }
    /// The supervised user.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx.load_one(UserById(self.0.user_id)).await?.map(User))
    }
    /// When the link was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The page size of a list: the configured default when omitted, at most
/// the configured maximum.
fn page_limit(ctx: &Context<'_>, first: Option<i32>) -> Result<u64, AppError> {
    let paging = &ctx.state()?.settings.graphql;
    let limit = match first {
        None => paging.default_page_size,
        Some(first) if first < 1 => return Err(AppError::bad_input("first", "must be at least 1")),
        Some(first) => u64::try_from(first).unwrap_or(u64::MAX),
    };
    if limit > paging.max_page_size {
        return Err(AppError::bad_input(
            "first",
            format!("must be at most {}", paging.max_page_size),
        ));
    }
    Ok(limit)
}

/// Loads `keys` in one batch into the request's loader cache and returns
/// the values found.
async fn load_all<K>(
    ctx: &Context<'_>,
    keys: impl IntoIterator<Item = K>,
) -> Result<Vec<<DbLoader as Loader<K>>::Value>, AppError>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    DbLoader: Loader<K, Error = Arc<DbErr>>,
{
    let keys: HashSet<K> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let loaded = ctx
        .loaders()?
        .load_many(keys)
        .await
        .map_err(|error| AppError::internal(anyhow::anyhow!("batched load failed: {error}")))?;
    Ok(loaded.into_values().collect())
}

/// Loads what the current selection asks of a page of users — school,
/// memberships (and their tenants and schools), guardians and supervised
/// users, at every depth — one batch per relation and level, so that the
/// statements a page costs do not depend on its size (DataLoader batches by
/// time, which on a busy machine can split a page into several batches).
/// The per-user resolvers then read the cache.
async fn prefetch_people(ctx: &Context<'_>, people: &[user::Model]) -> Result<(), AppError> {
    let mut pending = vec![(ctx.look_ahead(), people.to_vec())];
    while let Some((look, people)) = pending.pop() {
        if people.is_empty() {
            continue;
        }
        let memberships = look.field("memberships");
        let school = look.field("school");
        if look.field("role").exists() || school.exists() || memberships.exists() {
            let loaded = load_all(ctx, people.iter().map(|person| MembershipsOfUser(person.id))).await?;
            let schools_shown = school.exists() || memberships.field("school").exists();
            if schools_shown {
                let active = ctx.scope().ok().map(|scope| scope.tenant_id);
                let wanted = loaded
                    .iter()
                    .flatten()
                    .filter(|row| memberships.field("school").exists() || Some(row.tenant_id) == active)
                    .filter_map(|row| row.school_id)
                    .map(SchoolById)
                    .collect::<Vec<_>>();
                load_all(ctx, wanted).await?;
            }
            let tenant = memberships.field("tenant");
            if tenant.exists() {
                let tenants: Vec<Uuid> = loaded.iter().flatten().map(|row| row.tenant_id).collect();
                load_all(ctx, tenants.iter().copied().map(TenantById)).await?;
                if tenant.field("schools").exists() {
                    load_all(ctx, tenants.into_iter().map(SchoolsOfTenant)).await?;
                }
            }
        }
        let guardians = look.field("guardians");
        if guardians.exists() {
            let loaded = load_all(ctx, people.iter().map(|person| GuardiansOfUser(person.id))).await?;
            pending.push((guardians, loaded.into_iter().flatten().collect()));
        }
        let supervised = look.field("supervisedUsers");
        if supervised.exists() {
            let loaded = load_all(ctx, people.iter().map(|person| SupervisedUsersOfUser(person.id))).await?;
            pending.push((supervised, loaded.into_iter().flatten().collect()));
        }
    }
    Ok(())
}

/// Administration queries.
#[derive(Default)]
pub struct AdminQuery;

#[Object(serial)]
impl AdminQuery {
    /// The people you may see, by e-mail: a tenant admin, every member of the
    /// active tenant; a guardian, themselves and the users they supervise;
    /// anyone else, themselves.
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only those with this role in the active tenant.")] role: Option<MembershipRole>,
        #[graphql(
            desc = "At most this many; defaults to the configured page size, at most the configured maximum."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only users whose e-mail sorts after this one: the last e-mail of the previous page."
        )]
        after: Option<String>,
    ) -> Result<Vec<User>> {
        let scope = ctx.scope()?;
        let limit = page_limit(ctx, first)?;
        let state = ctx.state()?;
        let filter = UserFilter {
            role: role.map(Into::into),
            after_email: after,
        };
        let people = service::list_users(&state.db, &scope, filter, limit).await?;
        prefetch_people(ctx, &people).await?;
        Ok(people.into_iter().map(User).collect())
    }

    /// One person you may see (see `users`).
    async fn user(&self, ctx: &Context<'_>, id: Uuid) -> Result<User> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        Ok(User(service::find_user(&state.db, &scope, id).await?))
    }

    /// Guardian links of the active tenant, oldest first: a tenant admin,
    /// all of them; a guardian, those in which they are the guardian or the
    /// supervised user; anyone else, those in which they are supervised.
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn guardian_links(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this guardian's.")] guardian_id: Option<Uuid>,
        #[graphql(desc = "Only those supervising this user.")] user_id: Option<Uuid>,
        #[graphql(
            desc = "At most this many; defaults to the configured page size, at most the configured maximum."
        )]
        first: Option<i32>,
    ) -> Result<Vec<GuardianLink>> {
        let scope = ctx.scope()?;
        let limit = page_limit(ctx, first)?;
        let state = ctx.state()?;
        let filter = GuardianLinkFilter { guardian_id, user_id };
        let links = service::list_guardian_links(&state.db, &scope, filter, limit).await?;
        let look = ctx.look_ahead();
        if look.field("guardian").exists() || look.field("user").exists() {
            let people = links
                .iter()
                .flat_map(|link| [UserById(link.guardian_id), UserById(link.user_id)]);
            load_all(ctx, people).await?;
        }
        Ok(links.into_iter().map(GuardianLink).collect())
    }
}

/// Changes to a tenant.
#[derive(InputObject)]
pub struct UpdateTenantInput {
    /// New display name, 1–255 characters.
    pub name: String,
}

/// A new school.
#[derive(InputObject)]
pub struct CreateSchoolInput {
    /// Display name, 1–255 characters, unique in the tenant.
    pub name: String,
}

/// Changes to a school.
#[derive(InputObject)]
pub struct UpdateSchoolInput {
    /// New display name, 1–255 characters, unique in the tenant.
    pub name: String,
}

/// What `createUser` did: a new account (`User`), or, when the address has
/// an account already, an invitation to it (`Invitation`), exactly as
/// `inviteMember` answers.
#[derive(Union)]
pub enum CreateUserResult {
    /// The new account.
    User(User),
    /// The existing account was invited instead.
    Invitation(Invitation),
}

/// A new account and its membership in the active tenant.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Login e-mail; trimmed and lower-cased, unique.
    pub email: String,
    /// Display name, 1–255 characters.
    pub name: String,
    /// Initial password: 8–128 characters, not one of the 10,000 most
    /// common, not the e-mail address or the name.
    pub password: String,
    /// Role in the active tenant.
    #[graphql(default_with = "MembershipRole::Member")]
    pub role: MembershipRole,
    /// The member's school: a school of the active tenant.
    pub school_id: Option<Uuid>,
    /// Whether the account administers the whole system (super admins only).
    #[graphql(default = false)]
    pub is_super_admin: bool,
}

/// Changes to an account; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// New login e-mail; trimmed and lower-cased, unique.
    pub email: Option<String>,
    /// New display name, 1–255 characters.
    pub name: Option<String>,
    /// The member's new school in the active tenant (administrators);
    /// `null` removes it.
    pub school_id: MaybeUndefined<Uuid>,
    /// New password: 8–128 characters, not one of the 10,000 most common,
    /// not the e-mail address or the name.
    pub password: Option<String>,
    /// Your current password: required to change your own e-mail address
    /// or password. Wrong guesses are throttled like logins.
    pub current_password: Option<String>,
}

/// An existing account joining the active tenant: give `userId` or `email`.
#[derive(InputObject)]
pub struct AddMembershipInput {
    /// The account's id.
    pub user_id: Option<Uuid>,
    /// The account's e-mail address.
    pub email: Option<String>,
    /// Role in the tenant.
    #[graphql(default_with = "MembershipRole::Member")]
    pub role: MembershipRole,
}

/// Administration mutations. Each runs in one transaction.
#[derive(Default)]
pub struct AdminMutation;

#[Object(serial)]
impl AdminMutation {
    /// Renames a tenant. A super admin, or an administrator of that tenant.
    async fn update_tenant(&self, ctx: &Context<'_>, id: Uuid, input: UpdateTenantInput) -> Result<Tenant> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let tenant = write(state, async |txn| {
            service::update_tenant(txn, now, viewer, id, &input.name).await
        })
        .await?;
        Ok(Tenant(tenant))
    }

    /// Deletes a tenant with its schools, memberships, guardian links and
    /// sessions. Members whose default tenant it was get their oldest
    /// remaining membership as default. Super admins only. Returns the id.
    async fn delete_tenant(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let deleted = write(state, async |txn| {
            service::delete_tenant(txn, now, viewer, id).await
        })
        .await?;
        Ok(deleted)
    }

    /// Creates a school in the active tenant. Tenant admins.
    async fn create_school(&self, ctx: &Context<'_>, input: CreateSchoolInput) -> Result<School> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let school = write(state, async |txn| {
            service::create_school(txn, now, &scope, &input.name).await
        })
        .await?;
        Ok(School(school))
    }

    /// Renames a school of the active tenant. Tenant admins.
    async fn update_school(&self, ctx: &Context<'_>, id: Uuid, input: UpdateSchoolInput) -> Result<School> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let school = write(state, async |txn| {
            service::update_school(txn, now, &scope, id, &input.name).await
        })
        .await?;
        Ok(School(school))
    }

    /// Deletes a school of the active tenant; its users stay, without a
    /// school. Tenant admins. Returns the id.
    async fn delete_school(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let deleted = write(state, async |txn| {
            service::delete_school(txn, now, &scope, id).await
        })
        .await?;
        Ok(deleted)
    }

    /// Creates an account and its membership in the active tenant, which
    /// becomes its default tenant. When the address has an account already,
    /// nothing about that account changes: it is invited instead, and the
    /// answer is the `Invitation`, as from `inviteMember`. Tenant admins;
    /// only a super admin may create a super admin.
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<CreateUserResult> {
        let scope = ctx.scope()?;
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let new = service::prepare_new_user(
            &state.passwords,
            &scope,
            viewer,
            NewUserInput {
                email: input.email,
                name: input.name,
                password: input.password,
                role: input.role.into(),
                school_id: input.school_id,
                is_super_admin: input.is_super_admin,
            },
        )
        .await?;
        let ttl = Duration::hours(state.settings.invitations.ttl_hours);
        let now = state.clock.now();
        let result = write(state, async |txn| {
            let result = match service::create_user(txn, now, &scope, ttl, new).await? {
                CreatedAccount::Created(account) => CreateUserResult::User(User(account)),
                CreatedAccount::Invited(invitation) => {
                    let view = with_tenant_names(txn, vec![invitation])
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the invitation vanished")))?;
                    CreateUserResult::Invitation(Invitation(view))
                }
            };
            Ok(Outcome::quiet(result))
        })
        .await?;
        Ok(result)
    }

    /// Changes an account. Anyone: their own name, e-mail and password (the
    /// last two with `currentPassword`). A tenant admin: the school of a
    /// member of the active tenant; name, e-mail and password only of
    /// accounts that belong to no tenant they do not administer, never a
    /// super admin's. A super admin: any account. A new password ends the
    /// account's other login sessions.
    async fn update_user(&self, ctx: &Context<'_>, id: Uuid, input: UpdateUserInput) -> Result<User> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let changes = UserChangesInput {
            email: input.email,
            name: input.name,
            school_id: input.school_id.into(),
            password: input.password,
            current_password: input.current_password,
        };
        let now = state.clock.now();
        let client = ctx.client_info();
        let check = PasswordCheck {
            passwords: &state.passwords,
            state,
            throttle: &state.settings.login_throttle,
            now,
            address: client.ip_address.as_deref(),
        };
        let prepared = service::prepare_user_update(check, viewer, id, changes).await?;
        let account = write(state, async |txn| {
            service::update_user(txn, now, viewer, id, prepared).await
        })
        .await?;
        Ok(User(account))
    }

    /// Deletes an account with its memberships, guardian links and
    /// sessions. Its open login sessions end (`REVOKED`); they and its
    /// tenant-context trail stay as the record of what it did, and the
    /// deletion is audited. Super admins only, not their own. Returns the id.
    async fn delete_user(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let deleted = write(state, async |txn| {
            service::delete_user(txn, now, viewer, id).await
        })
        .await?;
        Ok(deleted)
    }

    /// Adds an existing account to the active tenant directly; it becomes
    /// the account's default tenant when it has none. Super admins only: a
    /// tenant admin invites (`inviteMember`) and the account accepts.
    async fn add_membership(&self, ctx: &Context<'_>, input: AddMembershipInput) -> Result<Membership> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let account = match (input.user_id, input.email) {
            (Some(id), None) => AccountRef::Id(id),
            (None, Some(email)) => AccountRef::Email(email),
            _ => return Err(AppError::bad_input("userId", "give exactly one of userId and email").into()),
        };
        let now = state.clock.now();
        let added = write(state, async |txn| {
            service::add_membership(txn, now, &scope, account, input.role.into()).await
        })
        .await?;
        Ok(Membership(added))
    }

    /// Changes a member's role in the active tenant. The last administrator
    /// cannot be demoted; demoting to MEMBER removes the links in which they
    /// are the guardian. Tenant admins.
    async fn update_membership_role(
        &self,
        ctx: &Context<'_>,
        user_id: Uuid,
        role: MembershipRole,
    ) -> Result<Membership> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let updated = write(state, async |txn| {
            service::update_membership_role(txn, now, &scope, user_id, role.into()).await
        })
        .await?;
        Ok(Membership(updated))
    }

    /// Removes a member from the active tenant, with their guardian links
    /// there; their login sessions in it move to their default tenant on
    /// their next request. When it was their default tenant, their oldest
    /// remaining membership becomes the default. You cannot remove your own
    /// administrator membership, nor the last administrator. Tenant admins.
    /// Returns the removed membership's id.
    async fn remove_membership(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<Uuid> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let removed = write(state, async |txn| {
            service::remove_membership(txn, now, &scope, user_id).await
        })
        .await?;
        Ok(removed)
    }

    /// Makes a member the guardian of another member of the active tenant.
    /// The guardian needs the role GUARDIAN or ADMIN. Tenant admins.
    async fn create_guardian_link(
        &self,
        ctx: &Context<'_>,
        guardian_id: Uuid,
        user_id: Uuid,
    ) -> Result<GuardianLink> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let link = write(state, async |txn| {
            service::create_guardian_link(txn, now, &scope, guardian_id, user_id).await
        })
        .await?;
        Ok(GuardianLink(link))
    }

    /// Deletes a guardian link of the active tenant. Tenant admins. Returns the id.
    async fn delete_guardian_link(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let deleted = write(state, async |txn| {
            service::delete_guardian_link(txn, now, &scope, id).await
        })
        .await?;
        Ok(deleted)
    }
}
