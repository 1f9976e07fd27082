//! The settings hierarchy as data: the properties, the levels that store
//! them, their values, and the field-by-field resolution of the effective
//! settings with the source and the candidates of every value.
//!
//! Pure functions only; loading the levels is the caller's business.

use std::fmt;

use entity::{school, system_settings, tenant};
use sea_orm::ActiveValue::Set;

use super::{
    DEFAULT_ABSOLUTE_TIMEOUT_MINUTES, DEFAULT_IDLE_TIMEOUT_MINUTES, DEFAULT_INVALIDATE_ALL_SESSIONS_ON_LOGIN,
    DEFAULT_IS_SHARED_DEVICE_MODE, DEFAULT_MAX_CONCURRENT_SESSIONS, DEFAULT_SESSION_WARNING_MINUTES,
    DEFAULT_SHARED_DEVICE_ABSOLUTE_TIMEOUT_MINUTES, DEFAULT_SHARED_DEVICE_ALWAYS_INVALIDATE_ALL_SESSIONS,
    DEFAULT_SHARED_DEVICE_IDLE_TIMEOUT_MINUTES, DEFAULT_SHARED_DEVICE_MAX_CONCURRENT_SESSIONS,
    EffectiveSettings,
};
use crate::config::SessionSecurityOptions;

/// One setting of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// Minutes of inactivity after which a login session ends (5–120).
    IdleTimeoutMinutes,
    /// Minutes after login at which a login session ends (30–1440).
    AbsoluteTimeoutMinutes,
    /// Login sessions a user may hold at once (1–10).
    MaxConcurrentSessions,
    /// Revoke a user's other login sessions when they log in.
    InvalidateAllSessionsOnLogin,
    /// Minutes of warning before a login session expires (1–10, below the idle timeout).
    SessionWarningMinutes,
    /// Whether devices are shared (the shared-device values then apply).
    IsSharedDeviceMode,
    /// Idle timeout in shared-device mode (5–120).
    SharedDeviceIdleTimeoutMinutes,
    /// Absolute timeout in shared-device mode (30–1440).
    SharedDeviceAbsoluteTimeoutMinutes,
    /// Concurrent login sessions in shared-device mode (1–10).
    SharedDeviceMaxConcurrentSessions,
    /// In shared-device mode, always revoke other login sessions at login.
    SharedDeviceAlwaysInvalidateAllSessions,
}

impl Property {
    fn index(self) -> usize {
        self as usize
    }

    /// The GraphQL input field that sets it (what `extensions.field` names).
    pub fn field(self) -> &'static str {
        match self {
            Self::IdleTimeoutMinutes => "idleTimeoutMinutes",
            Self::AbsoluteTimeoutMinutes => "absoluteTimeoutMinutes",
            Self::MaxConcurrentSessions => "maxConcurrentSessions",
            Self::InvalidateAllSessionsOnLogin => "invalidateAllSessionsOnLogin",
            Self::SessionWarningMinutes => "sessionWarningMinutes",
            Self::IsSharedDeviceMode => "isSharedDeviceMode",
            Self::SharedDeviceIdleTimeoutMinutes => "sharedDeviceIdleTimeoutMinutes",
            Self::SharedDeviceAbsoluteTimeoutMinutes => "sharedDeviceAbsoluteTimeoutMinutes",
            Self::SharedDeviceMaxConcurrentSessions => "sharedDeviceMaxConcurrentSessions",
            Self::SharedDeviceAlwaysInvalidateAllSessions => "sharedDeviceAlwaysInvalidateAllSessions",
        }
    }

    /// The accepted range of a numeric property (`None` for flags).
    pub(crate) fn range(self) -> Option<(i32, i32)> {
        match self {
            Self::IdleTimeoutMinutes | Self::SharedDeviceIdleTimeoutMinutes => Some((5, 120)),
            Self::AbsoluteTimeoutMinutes | Self::SharedDeviceAbsoluteTimeoutMinutes => Some((30, 1440)),
            Self::MaxConcurrentSessions | Self::SharedDeviceMaxConcurrentSessions => Some((1, 10)),
            Self::SessionWarningMinutes => Some((1, 10)),
            Self::InvalidateAllSessionsOnLogin
            | Self::IsSharedDeviceMode
            | Self::SharedDeviceAlwaysInvalidateAllSessions => None,
        }
    }

    /// Whether it is one of the shared-device values (stored only at the
    /// system, config and default levels).
    pub(crate) fn is_shared_device_value(self) -> bool {
        matches!(
            self,
            Self::SharedDeviceIdleTimeoutMinutes
                | Self::SharedDeviceAbsoluteTimeoutMinutes
                | Self::SharedDeviceMaxConcurrentSessions
                | Self::SharedDeviceAlwaysInvalidateAllSessions
        )
    }
}

/// A level of the hierarchy, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// The per-user override (`users.max_concurrent_sessions`).
    User,
    /// A school's overrides.
    School,
    /// A district's (tenant's) overrides.
    District,
    /// The `system_settings` row.
    System,
    /// The configuration file (`[session_security]`).
    Config,
    /// The hard-coded defaults.
    Default,
}

impl Level {
    /// Whether this level stores `property` (has a column or key for it).
    pub fn has(self, property: Property) -> bool {
        use Property as P;
        match self {
            Self::User => property == P::MaxConcurrentSessions,
            Self::School => matches!(
                property,
                P::IdleTimeoutMinutes
                    | P::AbsoluteTimeoutMinutes
                    | P::MaxConcurrentSessions
                    | P::InvalidateAllSessionsOnLogin
                    | P::IsSharedDeviceMode
            ),
            Self::District => matches!(
                property,
                P::IdleTimeoutMinutes
                    | P::AbsoluteTimeoutMinutes
                    | P::MaxConcurrentSessions
                    | P::InvalidateAllSessionsOnLogin
                    | P::SessionWarningMinutes
                    | P::IsSharedDeviceMode
            ),
            Self::System => !matches!(property, P::InvalidateAllSessionsOnLogin | P::IsSharedDeviceMode),
            Self::Config | Self::Default => true,
        }
    }

    /// The name of `property` at this level as the settings document spells
    /// it (audit details), e.g. `SessionIdleTimeoutMinutes` for a district
    /// and `DefaultIdleTimeoutMinutes` for the system.
    pub(crate) fn property_name(self, property: Property) -> &'static str {
        use Property as P;
        match (self, property) {
            (Self::System, P::IdleTimeoutMinutes) => "DefaultIdleTimeoutMinutes",
            (Self::System, P::AbsoluteTimeoutMinutes) => "DefaultAbsoluteTimeoutMinutes",
            (Self::System, P::MaxConcurrentSessions) => "DefaultMaxConcurrentSessions",
            (_, P::IdleTimeoutMinutes) => "SessionIdleTimeoutMinutes",
            (_, P::AbsoluteTimeoutMinutes) => "SessionAbsoluteTimeoutMinutes",
            (_, P::MaxConcurrentSessions) => "MaxConcurrentSessions",
            (_, P::InvalidateAllSessionsOnLogin) => "InvalidateAllSessionsOnLogin",
            (_, P::SessionWarningMinutes) => "SessionWarningMinutes",
            (_, P::IsSharedDeviceMode) => "IsSharedDeviceMode",
            (_, P::SharedDeviceIdleTimeoutMinutes) => "SharedDeviceIdleTimeoutMinutes",
            (_, P::SharedDeviceAbsoluteTimeoutMinutes) => "SharedDeviceAbsoluteTimeoutMinutes",
            (_, P::SharedDeviceMaxConcurrentSessions) => "SharedDeviceMaxConcurrentSessions",
            (_, P::SharedDeviceAlwaysInvalidateAllSessions) => "SharedDeviceAlwaysInvalidateAllSessions",
        }
    }

    /// The name of the level in audit details (`District`, `System`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::School => "School",
            Self::District => "District",
            Self::System => "System",
            Self::Config => "Config",
            Self::Default => "Default",
        }
    }

    /// The levels below this one, nearest first.
    pub(crate) fn parents(self) -> &'static [Self] {
        match self {
            Self::User => &[
                Self::School,
                Self::District,
                Self::System,
                Self::Config,
                Self::Default,
            ],
            Self::School => &[Self::District, Self::System, Self::Config, Self::Default],
            Self::District => &[Self::System, Self::Config, Self::Default],
            Self::System => &[Self::Config, Self::Default],
            Self::Config => &[Self::Default],
            Self::Default => &[],
        }
    }

    /// The nearest level below this one that stores `property`: where a
    /// value reset to NULL here is inherited from.
    pub(crate) fn parent_for(self, property: Property) -> Self {
        self.parents()
            .iter()
            .copied()
            .find(|level| level.has(property))
            .unwrap_or(Self::Default)
    }
}

/// The value of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingValue {
    /// A number of minutes or sessions.
    Int(i32),
    /// A flag.
    Flag(bool),
}

impl SettingValue {
    /// The number, if it is one.
    pub(crate) fn as_int(self) -> Option<i32> {
        match self {
            Self::Int(value) => Some(value),
            Self::Flag(_) => None,
        }
    }

    /// The flag, if it is one.
    pub(crate) fn as_flag(self) -> Option<bool> {
        match self {
            Self::Flag(value) => Some(value),
            Self::Int(_) => None,
        }
    }
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(value) => write!(f, "{value}"),
            Self::Flag(value) => write!(f, "{value}"),
        }
    }
}

/// Formats an optional value for audit details: `null` for NULL.
pub(crate) fn display_value(value: Option<SettingValue>) -> String {
    value.map_or_else(|| "null".to_owned(), |value| value.to_string())
}

/// The values stored at one level; `None` where unset (or where the level
/// has no such setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Values {
    slots: [Option<SettingValue>; 10],
}

impl Values {
    /// The value of `property`.
    pub fn get(&self, property: Property) -> Option<SettingValue> {
        self.slots[property.index()]
    }

    /// Sets `property` to `value`.
    pub fn set(&mut self, property: Property, value: Option<SettingValue>) {
        self.slots[property.index()] = value;
    }

    fn with(mut self, property: Property, value: Option<SettingValue>) -> Self {
        self.set(property, value);
        self
    }

    fn int(&self, property: Property) -> Option<i32> {
        self.get(property).and_then(SettingValue::as_int)
    }

    /// The `system_settings` row.
    pub(crate) fn of_system(row: &system_settings::Model) -> Self {
        use Property as P;
        let int = |value: Option<i32>| value.map(SettingValue::Int);
        Self::default()
            .with(P::IdleTimeoutMinutes, int(row.default_idle_timeout_minutes))
            .with(
                P::AbsoluteTimeoutMinutes,
                int(row.default_absolute_timeout_minutes),
            )
            .with(P::MaxConcurrentSessions, int(row.default_max_concurrent_sessions))
            .with(P::SessionWarningMinutes, int(row.session_warning_minutes))
            .with(
                P::SharedDeviceIdleTimeoutMinutes,
                int(row.shared_device_idle_timeout_minutes),
            )
            .with(
                P::SharedDeviceAbsoluteTimeoutMinutes,
                int(row.shared_device_absolute_timeout_minutes),
            )
            .with(
                P::SharedDeviceMaxConcurrentSessions,
                int(row.shared_device_max_concurrent_sessions),
            )
            .with(
                P::SharedDeviceAlwaysInvalidateAllSessions,
                row.shared_device_always_invalidate_all_sessions
                    .map(SettingValue::Flag),
            )
    }

    /// A tenant's (district's) overrides.
    pub(crate) fn of_district(row: &tenant::Model) -> Self {
        use Property as P;
        Self::default()
            .with(
                P::IdleTimeoutMinutes,
                row.session_idle_timeout_minutes.map(SettingValue::Int),
            )
            .with(
                P::AbsoluteTimeoutMinutes,
                row.session_absolute_timeout_minutes.map(SettingValue::Int),
            )
            .with(
                P::MaxConcurrentSessions,
                row.max_concurrent_sessions.map(SettingValue::Int),
            )
            .with(
                P::InvalidateAllSessionsOnLogin,
                row.invalidate_all_sessions_on_login.map(SettingValue::Flag),
            )
            .with(
                P::SessionWarningMinutes,
                row.session_warning_minutes.map(SettingValue::Int),
            )
            .with(
                P::IsSharedDeviceMode,
                row.is_shared_device_mode.map(SettingValue::Flag),
            )
    }

    /// A school's overrides.
    pub fn of_school(row: &school::Model) -> Self {
        use Property as P;
        Self::default()
            .with(
                P::IdleTimeoutMinutes,
                row.session_idle_timeout_minutes.map(SettingValue::Int),
            )
            .with(
                P::AbsoluteTimeoutMinutes,
                row.session_absolute_timeout_minutes.map(SettingValue::Int),
            )
            .with(
                P::MaxConcurrentSessions,
                row.max_concurrent_sessions.map(SettingValue::Int),
            )
            .with(
                P::InvalidateAllSessionsOnLogin,
                row.invalidate_all_sessions_on_login.map(SettingValue::Flag),
            )
            .with(
                P::IsSharedDeviceMode,
                row.is_shared_device_mode.map(SettingValue::Flag),
            )
    }

    /// A user's override.
    pub fn of_user(max_concurrent_sessions: Option<i32>) -> Self {
        Self::default().with(
            Property::MaxConcurrentSessions,
            max_concurrent_sessions.map(SettingValue::Int),
        )
    }

    /// The configuration file's `[session_security]`.
    pub(crate) fn of_config(options: &SessionSecurityOptions) -> Self {
        use Property as P;
        let int = |value: Option<i32>| value.map(SettingValue::Int);
        let flag = |value: Option<bool>| value.map(SettingValue::Flag);
        Self::default()
            .with(P::IdleTimeoutMinutes, int(options.idle_timeout_minutes))
            .with(P::AbsoluteTimeoutMinutes, int(options.absolute_timeout_minutes))
            .with(P::MaxConcurrentSessions, int(options.max_concurrent_sessions))
            .with(
                P::InvalidateAllSessionsOnLogin,
                flag(options.invalidate_all_sessions_on_login),
            )
            .with(P::SessionWarningMinutes, int(options.session_warning_minutes))
            .with(P::IsSharedDeviceMode, flag(options.is_shared_device_mode))
            .with(
                P::SharedDeviceIdleTimeoutMinutes,
                int(options.shared_device_idle_timeout_minutes),
            )
            .with(
                P::SharedDeviceAbsoluteTimeoutMinutes,
                int(options.shared_device_absolute_timeout_minutes),
            )
            .with(
                P::SharedDeviceMaxConcurrentSessions,
                int(options.shared_device_max_concurrent_sessions),
            )
            .with(
                P::SharedDeviceAlwaysInvalidateAllSessions,
                flag(options.shared_device_always_invalidate_all_sessions),
            )
    }

    /// The hard-coded defaults: every value set.
    pub fn defaults() -> Self {
        use Property as P;
        use SettingValue::{Flag, Int};
        Self::default()
            .with(P::IdleTimeoutMinutes, Some(Int(DEFAULT_IDLE_TIMEOUT_MINUTES)))
            .with(
                P::AbsoluteTimeoutMinutes,
                Some(Int(DEFAULT_ABSOLUTE_TIMEOUT_MINUTES)),
            )
            .with(
                P::MaxConcurrentSessions,
                Some(Int(DEFAULT_MAX_CONCURRENT_SESSIONS)),
            )
            .with(
                P::InvalidateAllSessionsOnLogin,
                Some(Flag(DEFAULT_INVALIDATE_ALL_SESSIONS_ON_LOGIN)),
            )
            .with(
                P::SessionWarningMinutes,
                Some(Int(DEFAULT_SESSION_WARNING_MINUTES)),
            )
            .with(P::IsSharedDeviceMode, Some(Flag(DEFAULT_IS_SHARED_DEVICE_MODE)))
            .with(
                P::SharedDeviceIdleTimeoutMinutes,
                Some(Int(DEFAULT_SHARED_DEVICE_IDLE_TIMEOUT_MINUTES)),
            )
            .with(
                P::SharedDeviceAbsoluteTimeoutMinutes,
                Some(Int(DEFAULT_SHARED_DEVICE_ABSOLUTE_TIMEOUT_MINUTES)),
            )
            .with(
                P::SharedDeviceMaxConcurrentSessions,
                Some(Int(DEFAULT_SHARED_DEVICE_MAX_CONCURRENT_SESSIONS)),
            )
            .with(
                P::SharedDeviceAlwaysInvalidateAllSessions,
                Some(Flag(DEFAULT_SHARED_DEVICE_ALWAYS_INVALIDATE_ALL_SESSIONS)),
            )
    }
}

/// Writes `value` into the `system_settings` column of `property` (which
/// the system level must have).
pub(crate) fn write_system(
    row: &mut system_settings::ActiveModel,
    property: Property,
    value: Option<SettingValue>,
) {
    use Property as P;
    let int = value.and_then(SettingValue::as_int);
    let flag = value.and_then(SettingValue::as_flag);
    match property {
        P::IdleTimeoutMinutes => row.default_idle_timeout_minutes = Set(int),
        P::AbsoluteTimeoutMinutes => row.default_absolute_timeout_minutes = Set(int),
        P::MaxConcurrentSessions => row.default_max_concurrent_sessions = Set(int),
        P::SessionWarningMinutes => row.session_warning_minutes = Set(int),
        P::SharedDeviceIdleTimeoutMinutes => row.shared_device_idle_timeout_minutes = Set(int),
        P::SharedDeviceAbsoluteTimeoutMinutes => row.shared_device_absolute_timeout_minutes = Set(int),
        P::SharedDeviceMaxConcurrentSessions => row.shared_device_max_concurrent_sessions = Set(int),
        P::SharedDeviceAlwaysInvalidateAllSessions => {
            row.shared_device_always_invalidate_all_sessions = Set(flag);
        }
        P::InvalidateAllSessionsOnLogin | P::IsSharedDeviceMode => {}
    }
}

/// Writes `value` into the `tenants` column of `property`.
pub(crate) fn write_district(row: &mut tenant::ActiveModel, property: Property, value: Option<SettingValue>) {
    use Property as P;
    let int = value.and_then(SettingValue::as_int);
    let flag = value.and_then(SettingValue::as_flag);
    match property {
        P::IdleTimeoutMinutes => row.session_idle_timeout_minutes = Set(int),
        P::AbsoluteTimeoutMinutes => row.session_absolute_timeout_minutes = Set(int),
        P::MaxConcurrentSessions => row.max_concurrent_sessions = Set(int),
        P::InvalidateAllSessionsOnLogin => row.invalidate_all_sessions_on_login = Set(flag),
        P::SessionWarningMinutes => row.session_warning_minutes = Set(int),
        P::IsSharedDeviceMode => row.is_shared_device_mode = Set(flag),
        _ => {}
    }
}

/// Writes `value` into the `schools` column of `property`.
pub(crate) fn write_school(row: &mut school::ActiveModel, property: Property, value: Option<SettingValue>) {
    use Property as P;
    let int = value.and_then(SettingValue::as_int);
    let flag = value.and_then(SettingValue::as_flag);
    match property {
        P::IdleTimeoutMinutes => row.session_idle_timeout_minutes = Set(int),
        P::AbsoluteTimeoutMinutes => row.session_absolute_timeout_minutes = Set(int),
        P::MaxConcurrentSessions => row.max_concurrent_sessions = Set(int),
        P::InvalidateAllSessionsOnLogin => row.invalidate_all_sessions_on_login = Set(flag),
        P::IsSharedDeviceMode => row.is_shared_device_mode = Set(flag),
        _ => {}
    }
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The user's own override.
    User,
    /// The school's override.
    School,
    /// The district's (tenant's) override.
    District,
    /// The `system_settings` row.
    System,
    /// The configuration file.
    Config,
    /// The hard-coded default.
    Default,
    /// Shared-device mode: the shared-device value of the `system_settings` row.
    SharedDeviceSystem,
    /// Shared-device mode: the shared-device value of the configuration file.
    SharedDeviceConfig,
    /// Shared-device mode: the hard-coded shared-device default.
    SharedDeviceDefault,
}

impl Source {
    fn of(level: Level, property: Property) -> Self {
        match (level, property.is_shared_device_value()) {
            (Level::User, _) => Self::User,
            (Level::School, _) => Self::School,
            (Level::District, _) => Self::District,
            (Level::System, false) => Self::System,
            (Level::Config, false) => Self::Config,
            (Level::Default, false) => Self::Default,
            (Level::System, true) => Self::SharedDeviceSystem,
            (Level::Config, true) => Self::SharedDeviceConfig,
            (Level::Default, true) => Self::SharedDeviceDefault,
        }
    }
}

/// One resolved setting: the value in force, where it comes from, and the
/// value at every level that applies (so an administrator sees why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The value in force.
    pub value: SettingValue,
    /// Its level.
    pub source: Source,
    /// The value at each level that stores this setting and applies to the
    /// subject, in precedence order (`None` where unset).
    pub candidates: Vec<(Source, Option<SettingValue>)>,
}

impl Resolved {
    /// The value as a number (0 if it is, impossibly, a flag).
    pub(crate) fn int(&self) -> i32 {
        self.value.as_int().unwrap_or_default()
    }

    /// The value as a flag (false if it is, impossibly, a number).
    pub(crate) fn flag(&self) -> bool {
        self.value.as_flag().unwrap_or_default()
    }
}

/// The levels that apply to one subject (a system-wide view, a district, a
/// school, or a user working in a district).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// The per-user override, when the subject is a user.
    pub user: Option<Values>,
    /// The school's overrides, when the subject is a school or a user of a
    /// school of the district.
    pub school: Option<Values>,
    /// The district's overrides, when the subject is in a district.
    pub district: Option<Values>,
    /// The `system_settings` row.
    pub system: Values,
    /// The configuration file.
    pub config: Values,
}

/// Every setting of one subject, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Whether shared-device mode is on.
    pub is_shared_device_mode: Resolved,
    /// The idle timeout in force.
    pub idle_timeout_minutes: Resolved,
    /// The absolute timeout in force.
    pub absolute_timeout_minutes: Resolved,
    /// The concurrent-session limit in force.
    pub max_concurrent_sessions: Resolved,
    /// Whether a login revokes the user's other login sessions.
    pub invalidate_all_sessions_on_login: Resolved,
    /// The expiry warning in force.
    pub session_warning_minutes: Resolved,
    /// The idle timeout that applies in shared-device mode.
    pub shared_device_idle_timeout_minutes: Resolved,
    /// The absolute timeout that applies in shared-device mode.
    pub shared_device_absolute_timeout_minutes: Resolved,
    /// The concurrent-session limit that applies in shared-device mode.
    pub shared_device_max_concurrent_sessions: Resolved,
    /// Whether shared-device mode forces invalidate-on-login.
    pub shared_device_always_invalidate_all_sessions: Resolved,
}

impl Resolution {
    /// The values alone.
    pub fn effective(&self) -> EffectiveSettings {
        EffectiveSettings {
            idle_timeout_minutes: self.idle_timeout_minutes.int(),
            absolute_timeout_minutes: self.absolute_timeout_minutes.int(),
            max_concurrent_sessions: self.max_concurrent_sessions.int(),
            invalidate_all_sessions_on_login: self.invalidate_all_sessions_on_login.flag(),
            session_warning_minutes: self.session_warning_minutes.int(),
            is_shared_device_mode: self.is_shared_device_mode.flag(),
        }
    }
}

/// The levels below the user, most specific first, with their values.
fn chain(layers: &Layers) -> [(Level, Option<&Values>); 5] {
    static DEFAULTS: std::sync::LazyLock<Values> = std::sync::LazyLock::new(Values::defaults);
    [
        (Level::School, layers.school.as_ref()),
        (Level::District, layers.district.as_ref()),
        (Level::System, Some(&layers.system)),
        (Level::Config, Some(&layers.config)),
        (Level::Default, Some(&*DEFAULTS)),
    ]
}

/// The first value set for `property` going down the hierarchy.
fn inherit(layers: &Layers, property: Property) -> Resolved {
    let candidates: Vec<(Source, Option<SettingValue>)> = chain(layers)
        .into_iter()
        .filter(|(level, _)| level.has(property))
        .filter_map(|(level, values)| {
            values.map(|values| (Source::of(level, property), values.get(property)))
        })
        .collect();
    let (source, value) = candidates
        .iter()
        .find_map(|(source, value)| value.map(|value| (*source, value)))
        // The defaults set every property; this is unreachable.
        .unwrap_or((Source::Default, SettingValue::Int(0)));
    Resolved {
        value,
        source,
        candidates,
    }
}

/// `ordinary` with the candidates of `shared` appended, taking the shared
/// value when `shared_wins`.
fn combine(ordinary: Resolved, shared: &Resolved, shared_wins: bool) -> Resolved {
    let mut candidates = ordinary.candidates;
    candidates.extend(shared.candidates.iter().copied());
    let (value, source) = if shared_wins {
        (shared.value, shared.source)
    } else {
        (ordinary.value, ordinary.source)
    };
    Resolved {
        value,
        source,
        candidates,
    }
}

/// Resolves every setting of a subject, field by field:
///
/// - each value is the first one set going School → District → System →
///   Config → Default, skipping the levels that do not store it (schools
///   store no warning minutes; the system row stores neither shared-device
///   mode nor invalidate-on-login);
/// - shared-device mode resolves the same way (School → District → Config →
///   Default); when it is on, the shared-device values (System → Config →
///   Default) replace the idle timeout, the absolute timeout and the
///   concurrent-session limit, winning over district and school overrides
///   and the user override (source `SHARED_DEVICE_*`); invalidate-on-login
///   is forced on when `SharedDeviceAlwaysInvalidateAllSessions` is true, and
///   otherwise resolves as usual;
/// - outside shared-device mode, the user's override, when set, replaces
///   the concurrent-session limit (source `USER`).
pub(crate) fn resolve(layers: &Layers) -> Resolution {
    use Property as P;
    let shared_mode = inherit(layers, P::IsSharedDeviceMode);
    let shared = shared_mode.flag();
    let shared_idle = inherit(layers, P::SharedDeviceIdleTimeoutMinutes);
    let shared_absolute = inherit(layers, P::SharedDeviceAbsoluteTimeoutMinutes);
    let shared_max = inherit(layers, P::SharedDeviceMaxConcurrentSessions);
    let shared_invalidate = inherit(layers, P::SharedDeviceAlwaysInvalidateAllSessions);

    let mut max = inherit(layers, P::MaxConcurrentSessions);
    if let Some(user) = &layers.user {
        let own = user.int(P::MaxConcurrentSessions);
        max.candidates
            .insert(0, (Source::User, own.map(SettingValue::Int)));
        if let Some(own) = own {
            max.value = SettingValue::Int(own);
            max.source = Source::User;
        }
    }
    Resolution {
        idle_timeout_minutes: combine(inherit(layers, P::IdleTimeoutMinutes), &shared_idle, shared),
        absolute_timeout_minutes: combine(
            inherit(layers, P::AbsoluteTimeoutMinutes),
            &shared_absolute,
            shared,
        ),
        max_concurrent_sessions: combine(max, &shared_max, shared),
        invalidate_all_sessions_on_login: combine(
            inherit(layers, P::InvalidateAllSessionsOnLogin),
            &shared_invalidate,
            shared && shared_invalidate.flag(),
        ),
        session_warning_minutes: inherit(layers, P::SessionWarningMinutes),
        is_shared_device_mode: shared_mode,
        shared_device_idle_timeout_minutes: shared_idle,
        shared_device_absolute_timeout_minutes: shared_absolute,
        shared_device_max_concurrent_sessions: shared_max,
        shared_device_always_invalidate_all_sessions: shared_invalidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Layers {
        Layers {
            user: None,
            school: None,
            district: None,
            system: Values::default(),
            config: Values::default(),
        }
    }

    #[test]
    fn nothing_set_gives_the_hard_coded_defaults() {
        let resolution = resolve(&layers());
        assert_eq!(
            resolution.effective(),
            EffectiveSettings {
                idle_timeout_minutes: 30,
                absolute_timeout_minutes: 480,
                max_concurrent_sessions: 5,
                invalidate_all_sessions_on_login: false,
                session_warning_minutes: 2,
                is_shared_device_mode: false,
            }
        );
        assert_eq!(resolution.idle_timeout_minutes.source, Source::Default);
    }

    #[test]
    fn the_most_specific_level_wins_field_by_field() {
        let mut layers = layers();
        let mut school = Values::default();
        school.set(Property::IdleTimeoutMinutes, Some(SettingValue::Int(10)));
        let mut district = Values::default();
        district.set(Property::IdleTimeoutMinutes, Some(SettingValue::Int(20)));
        district.set(Property::AbsoluteTimeoutMinutes, Some(SettingValue::Int(200)));
        layers.school = Some(school);
        layers.district = Some(district);
        let resolution = resolve(&layers);
        assert_eq!(resolution.idle_timeout_minutes.int(), 10);
        assert_eq!(resolution.idle_timeout_minutes.source, Source::School);
        assert_eq!(resolution.absolute_timeout_minutes.int(), 200);
        assert_eq!(resolution.absolute_timeout_minutes.source, Source::District);
        // Schools store no warning minutes: the candidates skip them.
        assert_eq!(
            resolution
                .session_warning_minutes
                .candidates
                .iter()
                .map(|(source, _)| *source)
                .collect::<Vec<_>>(),
            [Source::District, Source::System, Source::Config, Source::Default]
        );
    }

    #[test]
    fn shared_device_values_win_over_overrides_and_the_user() {
        let mut layers = layers();
        let mut school = Values::default();
        school.set(Property::IsSharedDeviceMode, Some(SettingValue::Flag(true)));
        school.set(Property::MaxConcurrentSessions, Some(SettingValue::Int(4)));
        layers.school = Some(school);
        layers.user = Some(Values::of_user(Some(7)));
        let resolution = resolve(&layers);
        let effective = resolution.effective();
        assert!(effective.is_shared_device_mode);
        assert_eq!(effective.idle_timeout_minutes, 15);
        assert_eq!(effective.absolute_timeout_minutes, 60);
        assert_eq!(effective.max_concurrent_sessions, 1);
        assert!(effective.invalidate_all_sessions_on_login);
        assert_eq!(
            resolution.max_concurrent_sessions.source,
            Source::SharedDeviceDefault
        );
    }

    #[test]
    fn reset_inherits_from_the_nearest_level_storing_the_property() {
        assert_eq!(
            Level::School.parent_for(Property::IdleTimeoutMinutes),
            Level::District
        );
        assert_eq!(
            Level::District.parent_for(Property::IdleTimeoutMinutes),
            Level::System
        );
        assert_eq!(
            Level::District.parent_for(Property::IsSharedDeviceMode),
            Level::Config
        );
        assert_eq!(
            Level::System.parent_for(Property::IdleTimeoutMinutes),
            Level::Config
        );
    }
}
