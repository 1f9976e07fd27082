//! Session settings (document 003): the effective settings of a district,
//! school or user with the source and candidates of every value, changes at
//! every level, reset to inherit, and the audit log.
//!
//! The rules live in [`crate::services::settings`]; this module only
//! translates. Every mutation runs in one transaction and, once committed,
//! invalidates the settings caches of every instance.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{audit_log, system_settings};
use uuid::Uuid;

use crate::error::AppError;
use crate::events::Event;
use crate::events::SettingsScope;
use crate::graphql::ContextExt;
use crate::graphql::loaders::UserById;
use crate::graphql::paging::{decode_after, page_limit};
use crate::graphql::tenancy::User;
use crate::services::settings::{
    self as service, AuditFilter, ChangeKind, Property, Resolved, SettingValue, Subject, SubjectSettings,
};
use crate::unit_of_work::{Outcome, write};

/// Where an effective value comes from.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SettingSource {
    /// The user's own override (concurrent sessions only).
    User,
    /// The school's override.
    School,
    /// The district's (tenant's) override.
    District,
    /// The system settings.
    System,
    /// The configuration file.
    Config,
    /// The hard-coded default.
    Default,
    /// Shared-device mode: the shared-device value of the system settings.
    SharedDeviceSystem,
    /// Shared-device mode: the shared-device value of the configuration file.
    SharedDeviceConfig,
    /// Shared-device mode: the hard-coded shared-device default.
    SharedDeviceDefault,
}

impl From<service::Source> for SettingSource {
    fn from(source: service::Source) -> Self {
        use service::Source as S;
        match source {
            S::User => Self::User,
            S::School => Self::School,
            S::District => Self::District,
            S::System => Self::System,
            S::Config => Self::Config,
            S::Default => Self::Default,
            S::SharedDeviceSystem => Self::SharedDeviceSystem,
            S::SharedDeviceConfig => Self::SharedDeviceConfig,
            S::SharedDeviceDefault => Self::SharedDeviceDefault,
        }
    }
}

/// A level at which settings are stored.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SettingsLevel {
    /// The system settings (one for the whole system).
    System,
    /// A district (tenant).
    District,
    /// A school.
    School,
    /// A user (their concurrent-session limit).
    User,
}

/// One session setting.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SessionSettingProperty {
    /// Idle timeout (system, district, school).
    IdleTimeoutMinutes,
    /// Absolute timeout (system, district, school).
    AbsoluteTimeoutMinutes,
    /// Concurrent-session limit (system, district, school, user).
    MaxConcurrentSessions,
    /// Invalidate other login sessions on login (district, school).
    InvalidateAllSessionsOnLogin,
    /// Expiry warning (system, district).
    SessionWarningMinutes,
    /// Shared-device mode (district, school).
    IsSharedDeviceMode,
    /// Shared-device idle timeout (system).
    SharedDeviceIdleTimeoutMinutes,
    /// Shared-device absolute timeout (system).
    SharedDeviceAbsoluteTimeoutMinutes,
    /// Shared-device concurrent-session limit (system).
    SharedDeviceMaxConcurrentSessions,
    /// Shared-device forced invalidation (system).
    SharedDeviceAlwaysInvalidateAllSessions,
}

impl From<SessionSettingProperty> for Property {
    fn from(property: SessionSettingProperty) -> Self {
        use SessionSettingProperty as P;
        match property {
            P::IdleTimeoutMinutes => Self::IdleTimeoutMinutes,
            P::AbsoluteTimeoutMinutes => Self::AbsoluteTimeoutMinutes,
            P::MaxConcurrentSessions => Self::MaxConcurrentSessions,
            P::InvalidateAllSessionsOnLogin => Self::InvalidateAllSessionsOnLogin,
            P::SessionWarningMinutes => Self::SessionWarningMinutes,
            P::IsSharedDeviceMode => Self::IsSharedDeviceMode,
            P::SharedDeviceIdleTimeoutMinutes => Self::SharedDeviceIdleTimeoutMinutes,
            P::SharedDeviceAbsoluteTimeoutMinutes => Self::SharedDeviceAbsoluteTimeoutMinutes,
            P::SharedDeviceMaxConcurrentSessions => Self::SharedDeviceMaxConcurrentSessions,
            P::SharedDeviceAlwaysInvalidateAllSessions => Self::SharedDeviceAlwaysInvalidateAllSessions,
        }
    }
}

/// The value of a numeric setting at one level.
#[derive(SimpleObject, Clone, Debug)]
pub struct IntSettingCandidate {
    /// The level.
    pub source: SettingSource,
    /// Its value; null where it is unset (inherits).
    pub value: Option<i32>,
}

/// A numeric setting in force, and why.
#[derive(SimpleObject, Clone, Debug)]
pub struct IntSetting {
    /// The value in force.
    pub value: i32,
    /// The level it comes from.
    pub source: SettingSource,
    /// The value at every level that stores this setting and applies here,
    /// in precedence order (user, school, district, system, config,
    /// default, then the shared-device levels).
    pub candidates: Vec<IntSettingCandidate>,
}

impl From<&Resolved> for IntSetting {
    fn from(resolved: &Resolved) -> Self {
        Self {
            value: resolved.int(),
            source: resolved.source.into(),
            candidates: resolved
                .candidates
                .iter()
                .map(|(source, value)| IntSettingCandidate {
                    source: (*source).into(),
                    value: value.and_then(SettingValue::as_int),
                })
                .collect(),
        }
    }
}

/// The value of a yes/no setting at one level.
#[derive(SimpleObject, Clone, Debug)]
pub struct BooleanSettingCandidate {
    /// The level.
    pub source: SettingSource,
    /// Its value; null where it is unset (inherits).
    pub value: Option<bool>,
}

/// A yes/no setting in force, and why.
#[derive(SimpleObject, Clone, Debug)]
pub struct BooleanSetting {
    /// The value in force.
    pub value: bool,
    /// The level it comes from.
    pub source: SettingSource,
    /// The value at every level that stores this setting and applies here,
    /// in precedence order.
    pub candidates: Vec<BooleanSettingCandidate>,
}

impl From<&Resolved> for BooleanSetting {
    fn from(resolved: &Resolved) -> Self {
        Self {
            value: resolved.flag(),
            source: resolved.source.into(),
            candidates: resolved
                .candidates
                .iter()
                .map(|(source, value)| BooleanSettingCandidate {
                    source: (*source).into(),
                    value: value.and_then(SettingValue::as_flag),
                })
                .collect(),
        }
    }
}

/// The session settings in force for a district, a school or a user, each
/// with its source and the value at every level.
pub struct EffectiveSessionSettings(pub SubjectSettings);

#[Object(serial)]
impl EffectiveSessionSettings {
    /// Whose settings these are.
    async fn level(&self) -> SettingsLevel {
        match self.0.subject {
            Subject::System => SettingsLevel::System,
            Subject::District(_) => SettingsLevel::District,
            Subject::School(_) => SettingsLevel::School,
            Subject::User { .. } => SettingsLevel::User,
        }
    }
    /// The district whose overrides apply (for a user: the tenant context
    /// they were resolved in), if any.
    async fn tenant_id(&self) -> Option<Uuid> {
        self.0.tenant_id
    }
    /// The school whose overrides apply, if any (for a user: their school,
    /// when it belongs to that district).
    async fn school_id(&self) -> Option<Uuid> {
        self.0.school_id
    }
    /// The user whose override applies, if any.
    async fn user_id(&self) -> Option<Uuid> {
        self.0.user_id
    }
    /// Whether shared-device mode is on (the shared-device values then
    /// replace the idle and absolute timeouts and the concurrent-session
    /// limit).
    async fn is_shared_device_mode(&self) -> BooleanSetting {
        (&self.0.resolution.is_shared_device_mode).into()
    }
    /// Minutes of inactivity after which a login session ends.
    async fn idle_timeout_minutes(&self) -> IntSetting {
        (&self.0.resolution.idle_timeout_minutes).into()
    }
    /// Minutes after login at which a login session ends regardless.
    async fn absolute_timeout_minutes(&self) -> IntSetting {
        (&self.0.resolution.absolute_timeout_minutes).into()
    }
    /// Login sessions a user may hold at once.
    async fn max_concurrent_sessions(&self) -> IntSetting {
        (&self.0.resolution.max_concurrent_sessions).into()
    }
    /// Whether a login revokes the user's other login sessions.
    async fn invalidate_all_sessions_on_login(&self) -> BooleanSetting {
        (&self.0.resolution.invalidate_all_sessions_on_login).into()
    }
    /// Minutes of warning before a login session expires.
    async fn session_warning_minutes(&self) -> IntSetting {
        (&self.0.resolution.session_warning_minutes).into()
    }
    /// The idle timeout of shared-device mode.
    async fn shared_device_idle_timeout_minutes(&self) -> IntSetting {
        (&self.0.resolution.shared_device_idle_timeout_minutes).into()
    }
    /// The absolute timeout of shared-device mode.
    async fn shared_device_absolute_timeout_minutes(&self) -> IntSetting {
        (&self.0.resolution.shared_device_absolute_timeout_minutes).into()
    }
    /// The concurrent-session limit of shared-device mode.
    async fn shared_device_max_concurrent_sessions(&self) -> IntSetting {
        (&self.0.resolution.shared_device_max_concurrent_sessions).into()
    }
    /// Whether shared-device mode forces invalidate-on-login.
    async fn shared_device_always_invalidate_all_sessions(&self) -> BooleanSetting {
        (&self.0.resolution.shared_device_always_invalidate_all_sessions).into()
    }
}

/// The stored system settings (null: inherit from the configuration file).
pub(crate) struct SystemSessionSettings(pub system_settings::Model);

#[Object(serial)]
impl SystemSessionSettings {
    /// Default idle timeout, 5–120 minutes.
    async fn idle_timeout_minutes(&self) -> Option<i32> {
        self.0.default_idle_timeout_minutes
    }
    /// Default absolute timeout, 30–1440 minutes.
    async fn absolute_timeout_minutes(&self) -> Option<i32> {
        self.0.default_absolute_timeout_minutes
    }
    /// Default concurrent-session limit, 1–10.
    async fn max_concurrent_sessions(&self) -> Option<i32> {
        self.0.default_max_concurrent_sessions
    }
    /// Default expiry warning, 1–10 minutes.
    async fn session_warning_minutes(&self) -> Option<i32> {
        self.0.session_warning_minutes
    }
    /// Idle timeout in shared-device mode, 5–120 minutes.
    async fn shared_device_idle_timeout_minutes(&self) -> Option<i32> {
        self.0.shared_device_idle_timeout_minutes
    }
    /// Absolute timeout in shared-device mode, 30–1440 minutes.
    async fn shared_device_absolute_timeout_minutes(&self) -> Option<i32> {
        self.0.shared_device_absolute_timeout_minutes
    }
    /// Concurrent-session limit in shared-device mode, 1–10.
    async fn shared_device_max_concurrent_sessions(&self) -> Option<i32> {
        self.0.shared_device_max_concurrent_sessions
    }
    /// Whether shared-device mode forces invalidate-on-login.
    async fn shared_device_always_invalidate_all_sessions(&self) -> Option<bool> {
        self.0.shared_device_always_invalidate_all_sessions
    }
    /// When they last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who last changed them: shown to super admins (who alone change
    /// them); null for everyone else.
    async fn updated_by_id(&self, ctx: &Context<'_>) -> Result<Option<Uuid>> {
        let viewer = ctx.viewer()?;
        Ok(self.0.updated_by.filter(|_| viewer.is_super_admin))
    }
}

/// Changes to the system settings. Omitted fields stay as they are; null
/// returns a field to inheritance from the configuration file.
#[derive(InputObject, Default)]
pub struct SystemSessionSettingsInput {
    /// Default idle timeout, 5–120 minutes, at most the absolute timeout.
    pub idle_timeout_minutes: MaybeUndefined<i32>,
    /// Default absolute timeout, 30–1440 minutes.
    pub absolute_timeout_minutes: MaybeUndefined<i32>,
    /// Default concurrent-session limit, 1–10.
    pub max_concurrent_sessions: MaybeUndefined<i32>,
    /// Default expiry warning, 1–10 minutes, below the idle timeout.
    pub session_warning_minutes: MaybeUndefined<i32>,
    /// Idle timeout in shared-device mode, 5–120 minutes.
    pub shared_device_idle_timeout_minutes: MaybeUndefined<i32>,
    /// Absolute timeout in shared-device mode, 30–1440 minutes.
    pub shared_device_absolute_timeout_minutes: MaybeUndefined<i32>,
    /// Concurrent-session limit in shared-device mode, 1–10.
    pub shared_device_max_concurrent_sessions: MaybeUndefined<i32>,
    /// Whether shared-device mode forces invalidate-on-login.
    pub shared_device_always_invalidate_all_sessions: MaybeUndefined<bool>,
}

/// Changes to a district's settings. Omitted fields stay as they are; null
/// returns a field to inheritance from the system settings.
#[derive(InputObject, Default)]
pub struct TenantSessionSettingsInput {
    /// Shared-device mode of the district.
    pub is_shared_device_mode: MaybeUndefined<bool>,
    /// Idle timeout, 5–120 minutes, at most the absolute timeout.
    pub idle_timeout_minutes: MaybeUndefined<i32>,
    /// Absolute timeout, 30–1440 minutes.
    pub absolute_timeout_minutes: MaybeUndefined<i32>,
    /// Concurrent-session limit, 1–10.
    pub max_concurrent_sessions: MaybeUndefined<i32>,
    /// Whether a login revokes the user's other login sessions.
    pub invalidate_all_sessions_on_login: MaybeUndefined<bool>,
    /// Expiry warning, 1–10 minutes, below the idle timeout.
    pub session_warning_minutes: MaybeUndefined<i32>,
}

/// Changes to a school's settings. Omitted fields stay as they are; null
/// returns a field to inheritance from the district.
#[derive(InputObject, Default)]
pub struct SchoolSessionSettingsInput {
    /// Shared-device mode of the school.
    pub is_shared_device_mode: MaybeUndefined<bool>,
    /// Idle timeout, 5–120 minutes, at most the absolute timeout.
    pub idle_timeout_minutes: MaybeUndefined<i32>,
    /// Absolute timeout, 30–1440 minutes.
    pub absolute_timeout_minutes: MaybeUndefined<i32>,
    /// Concurrent-session limit, 1–10.
    pub max_concurrent_sessions: MaybeUndefined<i32>,
    /// Whether a login revokes the user's other login sessions.
    pub invalidate_all_sessions_on_login: MaybeUndefined<bool>,
}

/// A scope whose settings are stored.
#[derive(InputObject)]
pub(crate) struct SettingsScopeInput {
    /// The level.
    pub level: SettingsLevel,
    /// The district, school or user; omitted for the system.
    pub id: Option<Uuid>,
}

impl SettingsScopeInput {
    fn into_scope(self) -> Result<SettingsScope, AppError> {
        let id =
            |id: Option<Uuid>| id.ok_or_else(|| AppError::bad_input("scope.id", "is required at this level"));
        Ok(match self.level {
            SettingsLevel::System => {
                if self.id.is_some() {
                    return Err(AppError::bad_input(
                        "scope.id",
                        "must be omitted for the system level",
                    ));
                }
                SettingsScope::System
            }
            SettingsLevel::District => SettingsScope::Tenant(id(self.id)?),
            SettingsLevel::School => SettingsScope::School(id(self.id)?),
            SettingsLevel::User => SettingsScope::User(id(self.id)?),
        })
    }
}

type Edits = Vec<(Property, Option<SettingValue>)>;

fn edit_int(edits: &mut Edits, property: Property, value: MaybeUndefined<i32>) {
    match value {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => edits.push((property, None)),
        MaybeUndefined::Value(value) => edits.push((property, Some(SettingValue::Int(value)))),
    }
}

fn edit_flag(edits: &mut Edits, property: Property, value: MaybeUndefined<bool>) {
    match value {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => edits.push((property, None)),
        MaybeUndefined::Value(value) => edits.push((property, Some(SettingValue::Flag(value)))),
    }
}

impl SystemSessionSettingsInput {
    fn edits(self) -> Edits {
        let mut edits = Vec::new();
        edit_int(
            &mut edits,
            Property::IdleTimeoutMinutes,
            self.idle_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::AbsoluteTimeoutMinutes,
            self.absolute_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::MaxConcurrentSessions,
            self.max_concurrent_sessions,
        );
        edit_int(
            &mut edits,
            Property::SessionWarningMinutes,
            self.session_warning_minutes,
        );
        edit_int(
            &mut edits,
            Property::SharedDeviceIdleTimeoutMinutes,
            self.shared_device_idle_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::SharedDeviceAbsoluteTimeoutMinutes,
            self.shared_device_absolute_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::SharedDeviceMaxConcurrentSessions,
            self.shared_device_max_concurrent_sessions,
        );
        edit_flag(
            &mut edits,
            Property::SharedDeviceAlwaysInvalidateAllSessions,
            self.shared_device_always_invalidate_all_sessions,
        );
        edits
    }
}

impl TenantSessionSettingsInput {
    fn edits(self) -> Edits {
        let mut edits = Vec::new();
        edit_flag(
            &mut edits,
            Property::IsSharedDeviceMode,
            self.is_shared_device_mode,
        );
        edit_int(
            &mut edits,
            Property::IdleTimeoutMinutes,
            self.idle_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::AbsoluteTimeoutMinutes,
            self.absolute_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::MaxConcurrentSessions,
            self.max_concurrent_sessions,
        );
        edit_flag(
            &mut edits,
            Property::InvalidateAllSessionsOnLogin,
            self.invalidate_all_sessions_on_login,
        );
        edit_int(
            &mut edits,
            Property::SessionWarningMinutes,
            self.session_warning_minutes,
        );
        edits
    }
}

impl SchoolSessionSettingsInput {
    fn edits(self) -> Edits {
        let mut edits = Vec::new();
        edit_flag(
            &mut edits,
            Property::IsSharedDeviceMode,
            self.is_shared_device_mode,
        );
        edit_int(
            &mut edits,
            Property::IdleTimeoutMinutes,
            self.idle_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::AbsoluteTimeoutMinutes,
            self.absolute_timeout_minutes,
        );
        edit_int(
            &mut edits,
            Property::MaxConcurrentSessions,
            self.max_concurrent_sessions,
        );
        edit_flag(
            &mut edits,
            Property::InvalidateAllSessionsOnLogin,
            self.invalidate_all_sessions_on_login,
        );
        edits
    }
}

/// One audit record.
pub(crate) struct AuditLogEntry(pub audit_log::Model);

#[Object(serial)]
impl AuditLogEntry {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The tenant concerned; null for system-wide records.
    async fn tenant_id(&self) -> Option<Uuid> {
        self.0.tenant_id
    }
    /// Who did it.
    async fn actor_id(&self) -> Option<Uuid> {
        self.0.actor_id
    }
    /// Who did it, if you may see them.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(actor) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.load_one(UserById(actor)).await?.map(User))
    }
    /// What, e.g. `UpdateDistrictSessionSettings`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// On what, e.g. `District:{id}`.
    async fn resource(&self) -> &str {
        &self.0.resource
    }
    /// How, e.g. `SessionIdleTimeoutMinutes: 30 → 45`.
    async fn details(&self) -> &str {
        &self.0.details
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Which audit records.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Exactly this action, e.g. `UpdateSchoolSessionSettings`.
    pub action: Option<String>,
    /// Exactly this resource, e.g. `School:{id}` or `System`.
    pub resource: Option<String>,
    /// Done by this user.
    pub actor_id: Option<Uuid>,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// A position in the audit log.
type AuditCursor = OpaqueCursor<(DateTime<Utc>, Uuid)>;

/// A page of audit records.
pub(crate) type AuditLogConnection = Connection<AuditCursor, AuditLogEntry, EmptyFields, EmptyFields>;

/// Session-settings queries.
#[derive(Default)]
pub(crate) struct SettingsQuery;

#[Object(serial)]
impl SettingsQuery {
    /// The session settings in force, each with its source and the value at
    /// every level. Give at most one of `schoolId`, `tenantId` and `userId`;
    /// none gives the system-wide view (what a district without overrides
    /// gets). A user's settings are resolved in your active tenant when
    /// they are a member of it (for yourself: your active tenant), else in
    /// their default tenant, with their school when it belongs to that
    /// tenant. Readers: super admins; administrators of the district
    /// concerned (for the system view, of any district); a user, their own.
    async fn effective_session_settings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A school.")] school_id: Option<Uuid>,
        #[graphql(desc = "A district (tenant).")] tenant_id: Option<Uuid>,
        #[graphql(desc = "A user.")] user_id: Option<Uuid>,
    ) -> Result<EffectiveSessionSettings> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let scope = match (school_id, tenant_id, user_id) {
            (None, None, None) => SettingsScope::System,
            (Some(id), None, None) => SettingsScope::School(id),
            (None, Some(id), None) => SettingsScope::Tenant(id),
            (None, None, Some(id)) => SettingsScope::User(id),
            _ => {
                return Err(AppError::bad_input(
                    if school_id.is_some() && tenant_id.is_some() {
                        "tenantId"
                    } else {
                        "userId"
                    },
                    "give at most one of schoolId, tenantId and userId",
                )
                .into());
            }
        };
        let subject = service::readable_subject(&state.db, viewer, scope).await?;
        Ok(EffectiveSessionSettings(
            service::resolve(&state.db, &state.settings_cache, subject).await?,
        ))
    }

    /// The stored system settings, with who changed them last. Super admins
    /// and tenant administrators.
    async fn system_session_settings(&self, ctx: &Context<'_>) -> Result<SystemSessionSettings> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        Ok(SystemSessionSettings(
            service::system_row(&state.db, viewer).await?,
        ))
    }

    /// The audit log, newest first, as a Relay cursor connection. Super
    /// admins see every record (system-wide ones included); tenant
    /// administrators, those of the tenants they administer.
    #[graphql(
        complexity = "crate::graphql::limits::page_cost(first, crate::graphql::limits::DEFAULT_PAGE_SIZE, crate::graphql::limits::MAX_PAGE_SIZE, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which records.")] filter: Option<AuditLogFilter>,
        #[graphql(desc = "Page size; defaults to the configured page size, at most the configured maximum.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<AuditLogConnection> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let limit = page_limit(first, &state.settings.graphql)?;
        let after = decode_after(after)?;
        let filter = filter.unwrap_or_default();
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(AppError::bad_input("filter.to", "must not be before filter.from").into());
        }
        let filter = AuditFilter {
            action: filter.action,
            resource: filter.resource,
            actor_id: filter.actor_id,
            from: filter.from,
            to: filter.to,
        };
        let visibility = service::audit_visibility(&state.db, viewer).await?;
        let page = service::audit::page(&state.db, &visibility, &filter, after, limit).await?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(
            page.rows
                .into_iter()
                .map(|row| Edge::new(OpaqueCursor((row.created_at, row.id)), AuditLogEntry(row))),
        );
        Ok(connection)
    }
}

/// Session-settings mutations. Each runs in one transaction, validates the
/// effective settings of the scope and of every scope beneath it, writes
/// one audit record per changed property, and returns the scope's
/// effective settings.
#[derive(Default)]
pub(crate) struct SettingsMutation;

impl SettingsMutation {
    async fn apply(
        ctx: &Context<'_>,
        scope: SettingsScope,
        edits: &[(Property, Option<SettingValue>)],
        kind: ChangeKind,
    ) -> Result<EffectiveSessionSettings> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        // Read and answered inside the transaction, through a cache of its
        // own: nothing after the commit can fail, and nothing uncommitted
        // reaches the shared cache.
        let (changed, answer) = write(state, async |txn| {
            let private = state.settings_cache.detached();
            let changed = service::change(txn, &private, now, viewer, scope, edits, kind).await?;
            let subject = service::readable_subject(txn, viewer, scope).await?;
            let answer = service::resolve(txn, &private, subject).await?;
            let events = if changed {
                vec![Event::SettingsChanged(scope)]
            } else {
                Vec::new()
            };
            Ok(Outcome::announcing((changed, answer), events))
        })
        .await?;
        // Every instance drops its cache on the event; this one at once, so
        // that the next read here already sees the change.
        if changed {
            state.settings_cache.invalidate(scope);
        }
        Ok(EffectiveSessionSettings(answer))
    }
}

#[Object(serial)]
impl SettingsMutation {
    /// Changes the system settings (super admins). Returns the system-wide
    /// effective settings.
    async fn update_system_session_settings(
        &self,
        ctx: &Context<'_>,
        input: SystemSessionSettingsInput,
    ) -> Result<EffectiveSessionSettings> {
        Self::apply(ctx, SettingsScope::System, &input.edits(), ChangeKind::Update).await
    }

    /// Changes a district's settings (its administrators, super admins).
    async fn update_tenant_session_settings(
        &self,
        ctx: &Context<'_>,
        tenant_id: Uuid,
        input: TenantSessionSettingsInput,
    ) -> Result<EffectiveSessionSettings> {
        Self::apply(
            ctx,
            SettingsScope::Tenant(tenant_id),
            &input.edits(),
            ChangeKind::Update,
        )
        .await
    }

    /// Changes a school's settings (administrators of its district, super
    /// admins).
    async fn update_school_session_settings(
        &self,
        ctx: &Context<'_>,
        school_id: Uuid,
        input: SchoolSessionSettingsInput,
    ) -> Result<EffectiveSessionSettings> {
        Self::apply(
            ctx,
            SettingsScope::School(school_id),
            &input.edits(),
            ChangeKind::Update,
        )
        .await
    }

    /// Sets a user's own concurrent-session limit, 1–10; null (or omitted)
    /// clears it. It applies in every tenant of the account, so: an
    /// administrator of every tenant the user is a member of, or a super
    /// admin. Ignored while shared-device mode is on. Audited as
    /// `UpdateUserSessionSettings` on `User:{id}`.
    async fn set_user_max_concurrent_sessions(
        &self,
        ctx: &Context<'_>,
        user_id: Uuid,
        value: Option<i32>,
    ) -> Result<EffectiveSessionSettings> {
        if let Some(value) = value
            && !(1..=10).contains(&value)
        {
            return Err(AppError::bad_input(
                "value",
                format!("must be between 1 and 10 sessions (got {value})"),
            )
            .into());
        }
        let edits = [(Property::MaxConcurrentSessions, value.map(SettingValue::Int))];
        Self::apply(ctx, SettingsScope::User(user_id), &edits, ChangeKind::Update).await
    }

    /// Returns one property of a scope to inheritance (NULL): a school then
    /// inherits from its district, a district from the system, the system
    /// from the configuration file (for properties a parent does not store,
    /// from the nearest level below that does). Audited as
    /// `ResetSessionSettingsToDefault`, `Reset {Property} to inherit from
    /// {ParentScope}`. Same permissions as the update of that level.
    async fn reset_session_settings(
        &self,
        ctx: &Context<'_>,
        scope: SettingsScopeInput,
        property: SessionSettingProperty,
    ) -> Result<EffectiveSessionSettings> {
        let scope = scope.into_scope()?;
        Self::apply(ctx, scope, &[(property.into(), None)], ChangeKind::Reset).await
    }
}
