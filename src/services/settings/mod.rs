//! Session settings (document 003): the values that govern login sessions,
//! resolved through a hierarchy of levels, changed with validation and an
//! audit trail, and cached per instance.
//!
//! # Levels, most specific first
//!
//! | level | where | stores |
//! |---|---|---|
//! | user | `users.max_concurrent_sessions` | the concurrent-session limit only |
//! | school | `schools` | idle, absolute, max concurrent, invalidate-on-login, shared-device mode |
//! | district | `tenants` | the school's five, plus the warning minutes |
//! | system | the `system_settings` row (`default_*`, `session_warning_minutes`, `shared_device_*`) | idle, absolute, max concurrent, warning, and the four shared-device values |
//! | config | `[session_security]` of the configuration file | everything |
//! | default | the constants below | everything |
//!
//! # Resolution, field by field
//!
//! See [`resolution::resolve`]: the first value set going School → District
//! → System → Config → Default, skipping levels without the setting. When
//! the effective shared-device mode is on, the shared-device values (System
//! → Config → Default) win over district, school and user overrides for the
//! idle timeout, the absolute timeout and the concurrent-session limit, and
//! `SharedDeviceAlwaysInvalidateAllSessions = true` forces
//! invalidate-on-login on. Outside shared-device mode a user's own limit,
//! when set, replaces the concurrent-session limit.
//!
//! # Changes
//!
//! Every change runs in the caller's transaction: authorize, lock (the
//! `system_settings` row, so that concurrent changes at different levels
//! cannot together produce invalid settings), apply, validate the
//! *effective* settings of the scope and of every scope beneath it, audit.
//! Once committed, the caller announces it with [`announce`].

pub mod audit;
pub mod cache;
pub mod resolution;
pub mod validation;

use entity::tenant_membership::MembershipRole;
use entity::{school, system_settings, tenant, tenant_membership, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::error::{AppError, AppResult};
use crate::events::SettingsScope;
use crate::services::tenant_context::membership;
pub use audit::{AuditAction, AuditFilter, AuditPage, AuditVisibility};
pub use cache::{CacheKey, CachedSessionSettings, SLIDING_EXPIRY, SettingsCache};
pub use resolution::{Layers, Level, Property, Resolution, Resolved, SettingValue, Source, Values};
use validation::Checked;

/// Hard-coded default: minutes of inactivity before a login session ends.
pub(crate) const DEFAULT_IDLE_TIMEOUT_MINUTES: i32 = 30;
/// Hard-coded default: minutes after login at which a login session ends.
pub(crate) const DEFAULT_ABSOLUTE_TIMEOUT_MINUTES: i32 = 480;
/// Hard-coded default: login sessions a user may hold at once.
pub(crate) const DEFAULT_MAX_CONCURRENT_SESSIONS: i32 = 5;
/// Hard-coded default: minutes of warning before a login session expires.
pub(crate) const DEFAULT_SESSION_WARNING_MINUTES: i32 = 2;
/// Hard-coded default: whether a login revokes the user's other login sessions.
pub(crate) const DEFAULT_INVALIDATE_ALL_SESSIONS_ON_LOGIN: bool = false;
/// Hard-coded default: whether devices are shared.
pub(crate) const DEFAULT_IS_SHARED_DEVICE_MODE: bool = false;
/// Hard-coded default: the idle timeout in shared-device mode.
pub(crate) const DEFAULT_SHARED_DEVICE_IDLE_TIMEOUT_MINUTES: i32 = 15;
/// Hard-coded default: the absolute timeout in shared-device mode.
pub(crate) const DEFAULT_SHARED_DEVICE_ABSOLUTE_TIMEOUT_MINUTES: i32 = 60;
/// Hard-coded default: the concurrent-session limit in shared-device mode.
pub(crate) const DEFAULT_SHARED_DEVICE_MAX_CONCURRENT_SESSIONS: i32 = 1;
/// Hard-coded default: whether shared-device mode forces invalidate-on-login.
pub(crate) const DEFAULT_SHARED_DEVICE_ALWAYS_INVALIDATE_ALL_SESSIONS: bool = true;

/// The resolved values that govern login sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// Minutes of inactivity after which a login session ends.
    pub idle_timeout_minutes: i32,
    /// Minutes after login at which a login session ends regardless.
    pub absolute_timeout_minutes: i32,
    /// Login sessions the user may hold at once.
    pub max_concurrent_sessions: i32,
    /// Whether a login revokes the user's other login sessions.
    pub invalidate_all_sessions_on_login: bool,
    /// Minutes of warning before a login session expires.
    pub session_warning_minutes: i32,
    /// Whether shared-device mode is on (the values above are then the
    /// shared-device ones).
    pub is_shared_device_mode: bool,
}

/// The effective settings for a user logging in to / working in
/// `tenant_id` (their school if it belongs to that tenant; the per-user
/// override). Reads the user row, and the system, district and school
/// levels through the cache (no query when they are cached). Usable inside
/// a transaction, as long as that transaction did not change settings
/// itself. `NOT_FOUND` when the user does not exist.
pub async fn effective_for_user(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
) -> AppResult<EffectiveSettings> {
    let user = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })?;
    effective_for(db, cache, &user, tenant_id).await
}

/// Like [`effective_for_user`] for a user row already loaded (no query at
/// all when the levels are cached).
pub(crate) async fn effective_for(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    user: &user::Model,
    tenant_id: Option<Uuid>,
) -> AppResult<EffectiveSettings> {
    let (layers, _) = user_layers(db, cache, user, tenant_id, None).await?;
    Ok(resolution::resolve(&layers).effective())
}

/// Like [`effective_for`] when the user's `memberships` are known (their
/// school in `tenant_id` is that membership's): no query at all when the
/// levels are cached.
pub(crate) async fn effective_for_member(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    user: &user::Model,
    memberships: &[tenant_membership::Model],
    tenant_id: Option<Uuid>,
) -> AppResult<EffectiveSettings> {
    let school_id = memberships
        .iter()
        .find(|membership| Some(membership.tenant_id) == tenant_id)
        .and_then(|membership| membership.school_id);
    let (layers, _) = user_layers(db, cache, user, tenant_id, Some(school_id)).await?;
    Ok(resolution::resolve(&layers).effective())
}

/// The levels that apply to `user` in `tenant_id`, and the school among
/// them; `known_school` is their membership's school when the caller has it.
async fn user_layers(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    user: &user::Model,
    tenant_id: Option<Uuid>,
    known_school: Option<Option<Uuid>>,
) -> AppResult<(Layers, Option<Uuid>)> {
    let system = cache.system(db).await?;
    let district = match tenant_id {
        Some(tenant_id) => cache.district(db, tenant_id).await?,
        None => None,
    };
    // The school is the user's in this tenant (their membership's).
    let school_id = match (tenant_id, &district) {
        (Some(_), Some(_)) if let Some(known) = known_school => known,
        (Some(tenant_id), Some(_)) => tenant_membership::Entity::find()
            .filter(tenant_membership::Column::UserId.eq(user.id))
            .filter(tenant_membership::Column::TenantId.eq(tenant_id))
            .one(db)
            .await?
            .and_then(|membership| membership.school_id),
        _ => None,
    };
    let school = match (school_id, &district) {
        (Some(school_id), Some(_)) => cache
            .school(db, school_id)
            .await?
            .filter(|school| school.tenant_id == tenant_id)
            .map(|school| (school_id, school)),
        _ => None,
    };
    Ok((
        Layers {
            user: Some(Values::of_user(user.max_concurrent_sessions)),
            school: school.as_ref().map(|(_, school)| school.values),
            district: district.map(|district| district.values),
            system: system.values,
            config: *cache.config(),
        },
        school.map(|(id, _)| id),
    ))
}

/// Whose effective settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The system-wide view: what a district without overrides gets.
    System,
    /// A district (tenant).
    District(Uuid),
    /// A school.
    School(Uuid),
    /// A user working in a tenant (or in none).
    User {
        /// The user.
        user_id: Uuid,
        /// The tenant context.
        tenant_id: Option<Uuid>,
    },
}

/// The resolution of a subject, with the scopes that took part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSettings {
    /// Whose settings.
    pub subject: Subject,
    /// The district whose overrides apply, if any.
    pub tenant_id: Option<Uuid>,
    /// The school whose overrides apply, if any.
    pub school_id: Option<Uuid>,
    /// The user whose override applies, if any.
    pub user_id: Option<Uuid>,
    /// Every value, its source and candidates.
    pub resolution: Resolution,
}

/// Resolves `subject` through the cache (what login sessions see).
pub(crate) async fn resolve(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    subject: Subject,
) -> AppResult<SubjectSettings> {
    let system = cache.system(db).await?;
    let mut layers = Layers {
        user: None,
        school: None,
        district: None,
        system: system.values,
        config: *cache.config(),
    };
    let (mut tenant_id, mut school_id, mut user_id) = (None, None, None);
    match subject {
        Subject::System => {}
        Subject::District(id) => {
            let district = cache
                .district(db, id)
                .await?
                .ok_or(AppError::NotFound { resource: "tenant" })?;
            layers.district = Some(district.values);
            tenant_id = Some(id);
        }
        Subject::School(id) => {
            let school = cache
                .school(db, id)
                .await?
                .ok_or(AppError::NotFound { resource: "school" })?;
            let district = match school.tenant_id {
                Some(tenant) => cache.district(db, tenant).await?,
                None => None,
            };
            layers.school = Some(school.values);
            layers.district = district.map(|district| district.values);
            tenant_id = school.tenant_id;
            school_id = Some(id);
        }
        Subject::User {
            user_id: id,
            tenant_id: tenant,
        } => {
            let user = user::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "user" })?;
            let (user_layers, school) = user_layers(db, cache, &user, tenant, None).await?;
            layers = user_layers;
            tenant_id = layers.district.is_some().then_some(tenant).flatten();
            school_id = school;
            user_id = Some(id);
        }
    }
    Ok(SubjectSettings {
        subject,
        tenant_id,
        school_id,
        user_id,
        resolution: resolution::resolve(&layers),
    })
}

// ---------------------------------------------------------------------------
// Who may do what
// ---------------------------------------------------------------------------

async fn role_in(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    tenant_id: Uuid,
) -> AppResult<Option<MembershipRole>> {
    Ok(membership(db, user_id, tenant_id)
        .await?
        .map(|membership| membership.role))
}

/// A tenant the viewer administers (a super admin: any). `NOT_FOUND` when it
/// does not exist or the viewer is not a member; `FORBIDDEN` for members
/// who are not administrators.
async fn administered_tenant(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    tenant_id: Uuid,
) -> AppResult<tenant::Model> {
    let tenant = tenant::Entity::find_by_id(tenant_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })?;
    if viewer.is_super_admin {
        return Ok(tenant);
    }
    match role_in(db, viewer.user_id, tenant_id).await? {
        Some(MembershipRole::Admin) => Ok(tenant),
        Some(_) => Err(AppError::forbidden(
            "only an administrator of the district or a super admin may manage its session settings",
        )),
        None => Err(AppError::NotFound { resource: "tenant" }),
    }
}

/// A school of a tenant the viewer administers (a super admin: any), with
/// its tenant. Errors as for [`administered_tenant`], about the school.
async fn administered_school(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    school_id: Uuid,
) -> AppResult<(school::Model, tenant::Model)> {
    let school = school::Entity::find_by_id(school_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "school" })?;
    match administered_tenant(db, viewer, school.tenant_id).await {
        Ok(tenant) => Ok((school, tenant)),
        Err(AppError::NotFound { .. }) => Err(AppError::NotFound { resource: "school" }),
        Err(AppError::Forbidden(_)) => Err(AppError::forbidden(
            "only an administrator of the school's district or a super admin may manage its session settings",
        )),
        Err(other) => Err(other),
    }
}

/// What the viewer may do with a user's settings.
struct UserAccess {
    user: user::Model,
    /// The tenant context the user's settings are read in.
    context: Option<Uuid>,
    /// The tenant a change is recorded under.
    audit_tenant: Option<Uuid>,
    /// The user's school in `audit_tenant`.
    school: Option<Uuid>,
    may_change: bool,
}

/// Checks access to `user_id`'s settings: the user themselves may read;
/// an administrator of a tenant the user is a member of, and a super admin,
/// may read and change (only a super admin changes a super admin's).
/// `NOT_FOUND` when the user does not exist or shares no tenant with the
/// viewer; `FORBIDDEN` otherwise.
async fn user_access(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    user_id: Uuid,
) -> AppResult<UserAccess> {
    let user = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound { resource: "user" })?;
    let memberships = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .order_by_desc(tenant_membership::Column::IsDefault)
        .order_by_asc(tenant_membership::Column::CreatedAt)
        .all(db)
        .await?;
    let viewer_roles = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(viewer.user_id))
        .all(db)
        .await?;
    let administered: Vec<Uuid> = memberships
        .iter()
        .map(|membership| membership.tenant_id)
        .filter(|tenant| {
            viewer_roles
                .iter()
                .any(|role| role.tenant_id == *tenant && role.role == MembershipRole::Admin)
        })
        .collect();
    let shared = memberships.iter().any(|membership| {
        viewer_roles
            .iter()
            .any(|role| role.tenant_id == membership.tenant_id)
    });
    let is_self = user_id == viewer.user_id;
    if !is_self && !viewer.is_super_admin && administered.is_empty() {
        return Err(if shared {
            AppError::forbidden(
                "only an administrator of the user's district may manage their session settings",
            )
        } else {
            AppError::NotFound { resource: "user" }
        });
    }
    let active = viewer.tenant_id.filter(|active| {
        memberships
            .iter()
            .any(|membership| membership.tenant_id == *active)
    });
    // Memberships are ordered default first.
    let first = memberships.first().map(|membership| membership.tenant_id);
    let context = if is_self {
        viewer.tenant_id
    } else {
        active.or(first)
    };
    let audit_tenant = if viewer.is_super_admin {
        active.or(first)
    } else {
        active
            .filter(|active| administered.contains(active))
            .or_else(|| administered.first().copied())
    };
    // The limit applies in every tenant of the account, so a tenant admin
    // changes it only for accounts that belong to no tenant they do not
    // administer.
    let administers_all = !administered.is_empty() && administered.len() == memberships.len();
    let may_change = viewer.is_super_admin || (administers_all && !user.is_super_admin);
    let school = memberships
        .iter()
        .find(|membership| Some(membership.tenant_id) == audit_tenant)
        .and_then(|membership| membership.school_id);
    Ok(UserAccess {
        user,
        context,
        audit_tenant,
        school,
        may_change,
    })
}

/// Whether the viewer administers any tenant (or is a super admin).
async fn is_some_admin(db: &impl ConnectionTrait, viewer: &UserIdentity) -> AppResult<bool> {
    if viewer.is_super_admin {
        return Ok(true);
    }
    Ok(tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(viewer.user_id))
        .filter(tenant_membership::Column::Role.eq(MembershipRole::Admin))
        .one(db)
        .await?
        .is_some())
}

/// The subject whose settings the viewer asks for, after checking that they
/// may read them: the system view, for super admins and tenant
/// administrators; a district or school, for its administrators and super
/// admins; a user, for themselves, the administrators of their tenants and
/// super admins. A user's settings are read in the viewer's active tenant
/// when the user is a member of it (for yourself: your active tenant), and
/// otherwise in the user's default tenant.
pub(crate) async fn readable_subject(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
    target: SettingsScope,
) -> AppResult<Subject> {
    match target {
        SettingsScope::System => {
            if is_some_admin(db, viewer).await? {
                Ok(Subject::System)
            } else {
                Err(AppError::forbidden(
                    "only administrators may read the system session settings",
                ))
            }
        }
        SettingsScope::Tenant(id) => {
            administered_tenant(db, viewer, id).await?;
            Ok(Subject::District(id))
        }
        SettingsScope::School(id) => {
            administered_school(db, viewer, id).await?;
            Ok(Subject::School(id))
        }
        SettingsScope::User(id) => {
            let access = user_access(db, viewer, id).await?;
            Ok(Subject::User {
                user_id: id,
                tenant_id: access.context,
            })
        }
    }
}

/// The `system_settings` row, for super admins and tenant administrators.
pub(crate) async fn system_row(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
) -> AppResult<system_settings::Model> {
    if !is_some_admin(db, viewer).await? {
        return Err(AppError::forbidden(
            "only administrators may read the system session settings",
        ));
    }
    read_system(db, false).await
}

/// The audit rows the viewer may read: a super admin, all; a tenant
/// administrator, those of the tenants they administer; anyone else none
/// (`FORBIDDEN`).
pub(crate) async fn audit_visibility(
    db: &impl ConnectionTrait,
    viewer: &UserIdentity,
) -> AppResult<AuditVisibility> {
    if viewer.is_super_admin {
        return Ok(AuditVisibility::All);
    }
    let tenants: Vec<Uuid> = tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(viewer.user_id))
        .filter(tenant_membership::Column::Role.eq(MembershipRole::Admin))
        .all(db)
        .await?
        .into_iter()
        .map(|membership| membership.tenant_id)
        .collect();
    if tenants.is_empty() {
        return Err(AppError::forbidden("only administrators may read the audit log"));
    }
    Ok(AuditVisibility::Tenants(tenants))
}

// ---------------------------------------------------------------------------
// Changes
// ---------------------------------------------------------------------------

/// How a change is meant, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New values (NULL included): `Update…SessionSettings`, `{Property}: {Old} → {New}`.
    Update,
    /// Back to inheritance: `ResetSessionSettingsToDefault`, `Reset {Property} to inherit from {Parent}`.
    Reset,
}

/// The level a scope stores its values at.
pub(crate) fn level_of(scope: SettingsScope) -> Level {
    match scope {
        SettingsScope::System => Level::System,
        SettingsScope::Tenant(_) => Level::District,
        SettingsScope::School(_) => Level::School,
        SettingsScope::User(_) => Level::User,
    }
}

/// The current row of the scope being changed.
enum Target {
    System(system_settings::Model),
    District(tenant::Model),
    School(school::Model),
    User(user::Model),
}

impl Target {
    fn values(&self) -> Values {
        match self {
            Self::System(row) => Values::of_system(row),
            Self::District(row) => Values::of_district(row),
            Self::School(row) => Values::of_school(row),
            Self::User(row) => Values::of_user(row.max_concurrent_sessions),
        }
    }
}

/// Takes the settings lock: reads the `system_settings` row `FOR UPDATE`
/// on PostgreSQL (SQLite serializes writers by itself).
async fn lock(db: &impl ConnectionTrait) -> AppResult<system_settings::Model> {
    read_system(db, true).await
}

/// The `system_settings` row, read from `db`.
async fn read_system(db: &impl ConnectionTrait, for_update: bool) -> AppResult<system_settings::Model> {
    let mut query = system_settings::Entity::find_by_id(system_settings::SINGLETON_ID);
    if for_update && db.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the system_settings row is missing")))
}

/// Applies `edits` (property → new value, `None` meaning NULL: inherit) to
/// the stored settings of `scope`, in the caller's transaction: checks the
/// viewer's rights, the ranges, and that no effective settings of the scope
/// or beneath it become invalid; writes one audit row per changed property.
/// Returns whether anything changed (then commit and [`announce`]).
pub async fn change(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    now: chrono::DateTime<chrono::Utc>,
    viewer: &UserIdentity,
    scope: SettingsScope,
    edits: &[(Property, Option<SettingValue>)],
    kind: ChangeKind,
) -> AppResult<bool> {
    let level = level_of(scope);
    for (property, value) in edits {
        if !level.has(*property) {
            let field = match kind {
                ChangeKind::Update => property.field(),
                ChangeKind::Reset => "property",
            };
            return Err(AppError::bad_input(
                field,
                format!(
                    "{} is not stored per {}",
                    level.property_name(*property),
                    level.name().to_lowercase()
                ),
            ));
        }
        if let Some(value) = value {
            validation::check_range(*property, *value)?;
        }
    }

    // Authorize, then lock and read the current row.
    let mut user_school = None;
    let audit_tenant = match scope {
        SettingsScope::System => {
            if !viewer.is_super_admin {
                return Err(AppError::forbidden(
                    "only a super admin may change the system session settings",
                ));
            }
            None
        }
        SettingsScope::Tenant(id) => Some(administered_tenant(db, viewer, id).await?.id),
        SettingsScope::School(id) => Some(administered_school(db, viewer, id).await?.1.id),
        SettingsScope::User(id) => {
            let access = user_access(db, viewer, id).await?;
            if !access.may_change {
                return Err(AppError::forbidden(if access.user.is_super_admin {
                    "only a super admin may change a super admin's session settings"
                } else {
                    "this account also belongs to tenants you do not administer: only a super admin may change its session settings"
                }));
            }
            user_school = access.school;
            access.audit_tenant
        }
    };
    let system = lock(db).await?;
    let target = match scope {
        SettingsScope::System => Target::System(system),
        SettingsScope::Tenant(id) => Target::District(
            tenant::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "tenant" })?,
        ),
        SettingsScope::School(id) => Target::School(
            school::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "school" })?,
        ),
        SettingsScope::User(id) => Target::User(
            user::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "user" })?,
        ),
    };

    let old = target.values();
    let changed: Vec<(Property, Option<SettingValue>, Option<SettingValue>)> = edits
        .iter()
        .filter(|(property, new)| old.get(*property) != *new)
        .map(|(property, new)| (*property, old.get(*property), *new))
        .collect();
    if changed.is_empty() {
        return Ok(false);
    }

    let before = checked_scopes(db, cache, scope).await?;
    match target {
        Target::System(row) => {
            let mut active: system_settings::ActiveModel = row.into();
            for (property, _, new) in &changed {
                resolution::write_system(&mut active, *property, *new);
            }
            active.updated_at = Set(now);
            active.updated_by = Set(Some(viewer.user_id));
            active.update(db).await?;
        }
        Target::District(row) => {
            let mut active: tenant::ActiveModel = row.into();
            for (property, _, new) in &changed {
                resolution::write_district(&mut active, *property, *new);
            }
            active.updated_at = Set(now);
            active.update(db).await?;
        }
        Target::School(row) => {
            let mut active: school::ActiveModel = row.into();
            for (property, _, new) in &changed {
                resolution::write_school(&mut active, *property, *new);
            }
            active.updated_at = Set(now);
            active.update(db).await?;
        }
        Target::User(row) => {
            let mut active: user::ActiveModel = row.into();
            let new = changed.first().and_then(|(_, _, new)| *new);
            active.max_concurrent_sessions = Set(new.and_then(SettingValue::as_int));
            active.updated_at = Set(now);
            active.update(db).await?;
        }
    }
    let after = checked_scopes(db, cache, scope).await?;
    let properties: Vec<Property> = changed.iter().map(|(property, _, _)| *property).collect();
    validation::reject_new_violations(&before, &after, &properties).map_err(|error| match (kind, error) {
        // A reset names its `property` argument.
        (ChangeKind::Reset, AppError::BadUserInput { message, .. }) => {
            AppError::bad_input("property", message)
        }
        (_, error) => error,
    })?;

    let id = match scope {
        SettingsScope::System => None,
        SettingsScope::Tenant(id) | SettingsScope::School(id) | SettingsScope::User(id) => Some(id),
    };
    let records = changed
        .iter()
        .map(|(property, old, new)| {
            let (action, details) = match kind {
                ChangeKind::Update => (
                    AuditAction::update_of(level),
                    audit::change_details(level, *property, *old, *new),
                ),
                ChangeKind::Reset => {
                    let parent = match (level, user_school) {
                        (Level::User, None) => Level::District,
                        _ => level.parent_for(*property),
                    };
                    (
                        AuditAction::ResetSessionSettingsToDefault,
                        audit::reset_details(level, *property, parent),
                    )
                }
            };
            audit::AuditRecord {
                tenant_id: audit_tenant,
                actor_id: viewer.user_id,
                action,
                resource: audit::resource(level, id),
                details,
            }
        })
        .collect();
    audit::write(db, now, records).await?;
    Ok(true)
}

/// The effective settings of `scope` and of every scope beneath it, read
/// from `db` (not the cache), named for error messages. A user's override
/// takes part in no cross-field rule: nothing to check.
async fn checked_scopes(
    db: &impl ConnectionTrait,
    cache: &SettingsCache,
    scope: SettingsScope,
) -> AppResult<Vec<Checked>> {
    let system = Values::of_system(&read_system(db, false).await?);
    let config = *cache.config();
    let settings = |district: Option<Values>, school: Option<Values>, config: Values| {
        resolution::resolve(&Layers {
            user: None,
            school,
            district,
            system,
            config,
        })
        .effective()
    };
    let district_label = |row: &tenant::Model| format!("District {} ({})", row.name, row.id);
    let school_label = |row: &school::Model| format!("School {} ({})", row.name, row.id);
    let mut checked = Vec::new();
    match scope {
        SettingsScope::User(_) => {}
        SettingsScope::School(id) => {
            let school = school::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "school" })?;
            let district = tenant::Entity::find_by_id(school.tenant_id).one(db).await?;
            checked.push(Checked {
                label: school_label(&school),
                settings: settings(
                    district.as_ref().map(Values::of_district),
                    Some(Values::of_school(&school)),
                    config,
                ),
            });
        }
        SettingsScope::Tenant(id) => {
            let district = tenant::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(AppError::NotFound { resource: "tenant" })?;
            let values = Values::of_district(&district);
            checked.push(Checked {
                label: district_label(&district),
                settings: settings(Some(values), None, config),
            });
            let schools = school::Entity::find()
                .filter(school::Column::TenantId.eq(id))
                .order_by_asc(school::Column::Name)
                .all(db)
                .await?;
            for school in &schools {
                checked.push(Checked {
                    label: school_label(school),
                    settings: settings(Some(values), Some(Values::of_school(school)), config),
                });
            }
        }
        SettingsScope::System => {
            let mut shared = config;
            shared.set(Property::IsSharedDeviceMode, Some(SettingValue::Flag(true)));
            checked.push(Checked {
                label: "System".to_owned(),
                settings: settings(None, None, config),
            });
            checked.push(Checked {
                label: "System in shared-device mode".to_owned(),
                settings: settings(None, None, shared),
            });
            let districts = tenant::Entity::find()
                .order_by_asc(tenant::Column::Name)
                .order_by_asc(tenant::Column::Id)
                .all(db)
                .await?;
            for district in &districts {
                checked.push(Checked {
                    label: district_label(district),
                    settings: settings(Some(Values::of_district(district)), None, config),
                });
            }
            let schools = school::Entity::find()
                .order_by_asc(school::Column::Name)
                .order_by_asc(school::Column::Id)
                .all(db)
                .await?;
            for school in &schools {
                let district = districts
                    .iter()
                    .find(|district| district.id == school.tenant_id)
                    .map(Values::of_district);
                checked.push(Checked {
                    label: school_label(school),
                    settings: settings(district, Some(Values::of_school(school)), config),
                });
            }
        }
    }
    Ok(checked)
}
