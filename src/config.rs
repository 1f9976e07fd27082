//! Typed, layered configuration: built-in defaults, then an optional TOML
//! file, then environment variables.
//!
//! | source | example |
//! |---|---|
//! | defaults | `Settings::default()` |
//! | file | `session-manager.toml` in the working directory, or `--config FILE` / `SESSION_MANAGER_CONFIG` |
//! | environment | `SESSION_MANAGER_SERVER__BIND=0.0.0.0:8080` (sections split by `__`), and `DATABASE_URL` |
//!
//! Every section rejects unknown keys so that a typo is an error at start-up
//! rather than a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The file read when no `--config` is given, if it exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "session-manager.toml";

/// The database used when nothing is configured: an SQLite file in the
/// working directory, created on first start.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://session-manager.db?mode=rwc";

/// The built-in page size of connection fields without `first`; the cost of
/// such a field is reckoned with it.
pub(crate) const DEFAULT_PAGE_SIZE: u64 = 20;

/// The built-in largest `first` of connection fields; the cost of a field
/// is reckoned with at most it.
pub(crate) const MAX_PAGE_SIZE: u64 = 100;

/// Everything the server can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener and transport limits.
    pub server: ServerSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// GraphQL execution limits and paging.
    pub graphql: GraphqlSettings,
    /// Log output.
    pub telemetry: TelemetrySettings,
    /// Tokens, and the credentials of other services.
    pub auth: AuthSettings,
    /// The `SessionSecurityOptions` of the settings document: the level below
    /// the `system_settings` row and above the hard-coded defaults.
    pub session_security: SessionSecurityOptions,
    /// Limits on uploaded content metadata.
    pub content: ContentSettings,
    /// Background jobs.
    pub jobs: JobSettings,
    /// Password hashing capacity.
    pub passwords: PasswordSettings,
    /// Throttling of failed password checks.
    pub login_throttle: LoginThrottleSettings,
    /// Invitations into tenants.
    pub invitations: InvitationSettings,
    /// The durable event log.
    pub events: EventLogSettings,
    /// Delivery of notifications to the tenants' webhook endpoints.
    pub webhooks: WebhookSettings,
}

/// Delivery of notifications to webhook endpoints (Standard Webhooks
/// signing), at least once, retried with exponential backoff and jitter.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Deliver on this instance (every instance may: each delivery is
    /// leased to one at a time). Default true.
    pub deliver: bool,
    /// Attempts before a delivery is given up (then `FAILED`, visible and
    /// redeliverable). Default 8, 1..=50.
    pub max_attempts: i32,
    /// Seconds before the second attempt; each further one doubles it, with
    /// up to a quarter more at random (jitter). Default 10.
    pub initial_backoff_secs: i64,
    /// The longest wait between attempts, in seconds. Default 3600, at
    /// most 86400.
    pub max_backoff_secs: i64,
    /// Seconds an attempt may take (connecting, sending, answering).
    /// Default 10, 1..=300.
    pub timeout_secs: u64,
    /// Deliveries attempted at once by one instance. Default 8, 1..=256.
    pub concurrency: usize,
    /// Days a succeeded or given-up delivery stays in the delivery log.
    /// Default 30, 1..=3650.
    pub log_retention_days: i64,
    /// Networks that deliveries may reach although they are private,
    /// loopback or link-local (refused otherwise, checked on the resolved
    /// addresses), e.g. `["10.1.0.0/16"]`. Default none.
    pub allowed_networks: Vec<ipnet::IpNet>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            deliver: true,
            max_attempts: 8,
            initial_backoff_secs: 10,
            max_backoff_secs: 3600,
            timeout_secs: 10,
            concurrency: 8,
            log_retention_days: 30,
            allowed_networks: Vec::new(),
        }
    }
}

/// The durable event log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventLogSettings {
    /// Days an event is kept; a subscriber may resume from a cursor this
    /// old. Default 7, at least 1.
    pub retention_days: i64,
    /// Seconds between reads of the log that no wake-up asked for: a safety
    /// net should a wake-up (`NOTIFY`) be lost without the connection
    /// dropping. Default 30; 0 turns it off.
    pub poll_interval_secs: u64,
    /// Connections of the pool the log is read through (delivery and the
    /// replays of resuming subscribers), apart from the request pool so
    /// that neither waits for the other. Default 4, at least 2.
    pub reader_connections: u32,
}

impl Default for EventLogSettings {
    fn default() -> Self {
        Self {
            retention_days: 7,
            poll_interval_secs: 30,
            reader_connections: 4,
        }
    }
}

/// Password hashing capacity: Argon2 runs on a fixed pool of threads behind
/// a bounded queue; work beyond it is refused with `SERVER_BUSY`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    /// Argon2 computations run at once (each holds about 19 MiB). Default 0:
    /// one per available core.
    pub hashing_workers: usize,
    /// Computations that may wait for a worker; more are refused at once.
    /// Default 16.
    pub hashing_queue: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            hashing_workers: 0,
            hashing_queue: 16,
        }
    }
}

/// Throttling of failed password checks (logins, and the current password
/// of `updateUser`), counted in the database so that every instance shares
/// the counts. An e-mail address is locked after a few failures; a client
/// address is only slowed down, after many, to one check per interval, so
/// that one child behind a school's shared address cannot lock out the
/// school.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginThrottleSettings {
    /// Failures are forgotten this many seconds after the latest one.
    /// Default 3600; at least `max_lockout_secs`.
    pub window_secs: i64,
    /// Failures per e-mail address before it is locked. Default 5.
    pub email_max_failures: i32,
    /// The first lockout of an e-mail address, in seconds; each further
    /// failure doubles it. Default 30.
    pub email_lockout_secs: i64,
    /// Failures per client address before it is slowed down. Default 100.
    pub address_max_failures: i32,
    /// While a client address is slowed down, it gets one password check
    /// per this many seconds (right or wrong); others wait. Default 1.
    pub address_interval_secs: i64,
    /// The longest lockout of an e-mail address, in seconds. Default 900.
    pub max_lockout_secs: i64,
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        Self {
            window_secs: 3600,
            email_max_failures: 5,
            email_lockout_secs: 30,
            address_max_failures: 100,
            address_interval_secs: 1,
            max_lockout_secs: 900,
        }
    }
}

/// Invitations into tenants.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvitationSettings {
    /// Hours an invitation stays open. Default 168 (a week), 1..=2160.
    pub ttl_hours: i64,
}

impl Default for InvitationSettings {
    fn default() -> Self {
        Self { ttl_hours: 168 }
    }
}

/// What a login does when the user already has the most login sessions allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrentSessionPolicy {
    /// End the oldest login sessions to make room (the default).
    #[default]
    EvictOldest,
    /// Refuse the new login.
    Reject,
}

/// Background jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Seconds between sweeps that mark sessions past their end time as
    /// expired (readers see them as expired at once regardless; the
    /// deadline scheduler records each at its end, the sweep catches what
    /// it missed). Default 15.
    pub expiry_sweep_interval_secs: u64,
    /// Record (and announce) the expiry of each session at its planned
    /// end, by a timer on the next deadline, so that the lock manager hears
    /// of it at that moment. Default true; when off, expiries wait for the
    /// sweep.
    pub expire_at_deadline: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            expiry_sweep_interval_secs: 15,
            expire_at_deadline: true,
        }
    }
}

/// HTTP listener and transport limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Seconds an HTTP request may take before it is answered with 408. Default 30.
    pub request_timeout_secs: u64,
    /// Milliseconds a WebSocket client has to send `connection_init`. Default 10000.
    pub ws_connection_init_timeout_ms: u64,
    /// Seconds between keep-alive messages on legacy `graphql-ws` connections. Default 15.
    pub ws_keep_alive_secs: u64,
    /// Largest accepted request body, in bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy
    /// that sets it). Default false.
    pub trust_forwarded_headers: bool,
    /// Origins (`https://portal.example.org`) whose pages may call the API
    /// from a browser. Default empty: no cross-origin access.
    pub cors_allowed_origins: Vec<String>,
    /// Largest accepted WebSocket message (and frame), in bytes. Default 1 MiB.
    pub ws_max_message_bytes: usize,
    /// Most operations running at once on one WebSocket connection. Default 100.
    pub ws_max_operations: usize,
    /// Seconds a WebSocket client may leave one message untaken (its socket
    /// buffers full) before it is disconnected with 1013, to reconnect and
    /// resume with `after`; 0 never. Default 10.
    pub ws_send_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            ws_connection_init_timeout_ms: 10_000,
            ws_keep_alive_secs: 15,
            max_body_bytes: 1024 * 1024,
            trust_forwarded_headers: false,
            cors_allowed_origins: Vec::new(),
            ws_max_message_bytes: 1024 * 1024,
            ws_max_operations: 100,
            ws_send_timeout_secs: 10,
        }
    }
}

impl ServerSettings {
    /// The HTTP request timeout.
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// Database connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST:PORT/DB`. Also read
    /// from `DATABASE_URL`. Secret: it may carry a password. Default: an
    /// SQLite file `session-manager.db` in the working directory.
    pub url: SecretString,
    /// Largest number of pooled connections (PostgreSQL). Default 10.
    pub max_connections: u32,
    /// Seconds to wait for a connection from the pool. Default 10.
    pub acquire_timeout_secs: u64,
    /// Run pending migrations at start-up (under a lock). Default true.
    pub migrate_on_start: bool,
    /// Log every SQL statement at debug level. Default false.
    pub log_statements: bool,
    /// SQLite only: read-only connections that queries read through beside
    /// the single writing connection (WAL lets them run while a write
    /// holds it), so that reads neither queue behind writes nor behind
    /// each other. Default 4, at least 1. PostgreSQL reads through the
    /// main pool.
    pub sqlite_read_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(DEFAULT_DATABASE_URL),
            max_connections: 10,
            acquire_timeout_secs: 10,
            migrate_on_start: true,
            log_statements: false,
            sqlite_read_connections: 4,
        }
    }
}

impl DatabaseSettings {
    /// Whether the URL points at PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        let url = self.url.expose_secret();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

/// GraphQL execution limits and paging. Every document is measured before
/// it is validated or run; one that passes a limit is refused with
/// `QUERY_TOO_LARGE` (or `QUERY_TOO_COMPLEX`) naming the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Deepest accepted selection nesting, counted after fragments are
    /// expanded. Default 20: GraphiQL's introspection query nests 15 deep.
    pub max_depth: usize,
    /// Deepest accepted nesting of `{`, `(` and `[` in the raw document
    /// (selections, arguments, list and object values), checked before
    /// parsing. Default 64.
    pub max_nesting: usize,
    /// Most selections (fields, `__typename` included, fragment spreads and
    /// inline fragments) a document may make once its fragments are
    /// expanded. Default 2000 (GraphiQL's introspection query makes about 300).
    pub max_fields: u64,
    /// Most aliases in a document. Default 30.
    pub max_aliases: usize,
    /// Most directives in a document. Default 50.
    pub max_directives: usize,
    /// Most fragment spreads in a document. Default 100.
    pub max_fragment_spreads: usize,
    /// Most operations in one document. Default 20.
    pub max_operations: usize,
    /// Most arguments (of fields and directives) and variable definitions
    /// in one document. Default 200.
    pub max_arguments: usize,
    /// Most requests in one HTTP batch (a JSON array). Default 20.
    pub max_batch_size: usize,
    /// Highest accepted query cost: every field costs 1, and a list field
    /// multiplies the cost of its items by `first` (or its default page
    /// size) or by its length bound. Default 500000: a full page (100) of
    /// sessions with their modules and videos costs about 420000.
    pub max_complexity: usize,
    /// Page size when a connection field gets no `first`. Default 20.
    pub default_page_size: u64,
    /// Largest accepted `first`. Default 100.
    pub max_page_size: u64,
    /// Answer introspection queries (GraphiQL needs them). Default true.
    pub introspection: bool,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 20,
            max_nesting: 64,
            max_fields: 2000,
            max_aliases: 30,
            max_directives: 50,
            max_fragment_spreads: 100,
            max_operations: 20,
            max_arguments: 200,
            max_batch_size: 20,
            max_complexity: 500_000,
            default_page_size: DEFAULT_PAGE_SIZE,
            max_page_size: MAX_PAGE_SIZE,
            introspection: true,
        }
    }
}

/// Tokens, and the credentials of other services.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HMAC key signing login tokens (at least 32 characters). Every instance
    /// of a deployment needs the same one. When unset, a random key is made
    /// at start-up: tokens then die with the process (fine for trying it out).
    pub token_secret: Option<SecretString>,
    /// Lifetime of a login token in minutes; the login session's absolute
    /// timeout can end it sooner. Default 1440 (a day).
    pub token_ttl_minutes: i64,
    /// `last_seen_at` of a login session is written at most this often. Default 60.
    pub last_seen_resolution_secs: i64,
    /// How many login sessions, accounts, users' memberships and guardians'
    /// links each instance keeps in memory to authenticate without a query
    /// (each kind bounded on its own; the least used go first). Default 100000.
    pub identity_cache_entries: u64,
    /// When a login would exceed the effective concurrent-session limit:
    /// `evict_oldest` (end the oldest login sessions, the default) or
    /// `reject` (refuse the login with CONFLICT).
    pub concurrent_session_policy: ConcurrentSessionPolicy,
    /// Credentials of other services (lock manager, notification service),
    /// each with what it is granted and nothing else.
    pub services: Vec<ServiceCredential>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_secret: None,
            token_ttl_minutes: 24 * 60,
            last_seen_resolution_secs: 60,
            identity_cache_entries: 100_000,
            concurrent_session_policy: ConcurrentSessionPolicy::EvictOldest,
            services: Vec::new(),
        }
    }
}

/// One service and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCredential {
    /// The service's name, for logs (e.g. `lock-manager`).
    pub name: String,
    /// The bearer token it presents (at least 32 characters).
    pub token: SecretString,
    /// What it may do: `lock_state` (the lock manager's session state:
    /// `lockState`, `lockStateChanged`, `isSessionActive`, `activeSession`)
    /// and `notifications` (the notification service's `notifications`
    /// subscription). Default `["lock_state"]`; everything else is refused.
    #[serde(default = "ServiceGrant::default_grants")]
    pub grants: Vec<ServiceGrant>,
}

/// Something a service credential may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceGrant {
    /// Read and follow session and lock state (the lock manager).
    LockState,
    /// Follow the notifications (the notification service).
    Notifications,
}

impl ServiceGrant {
    /// What a credential configured without `grants` may do.
    fn default_grants() -> Vec<Self> {
        vec![Self::LockState]
    }

    /// The name used in configuration and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::LockState => "lock_state",
            Self::Notifications => "notifications",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `pretty` or `json`. Default `pretty`.
    pub format: LogFormat,
    /// A tracing filter; `RUST_LOG` wins when set. Default `info`.
    pub filter: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info".to_owned(),
        }
    }
}

/// The config-file level of the session settings hierarchy
/// (`SessionSecurityOptions` in the settings document). Unset values fall
/// through to the hard-coded defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSecurityOptions {
    /// Minutes of inactivity after which a login session ends (5–120).
    pub idle_timeout_minutes: Option<i32>,
    /// Minutes after login at which a login session ends regardless (30–1440).
    pub absolute_timeout_minutes: Option<i32>,
    /// Login sessions a user may hold at once (1–10).
    pub max_concurrent_sessions: Option<i32>,
    /// Minutes of warning before a login session expires (1–10, below the idle timeout).
    pub session_warning_minutes: Option<i32>,
    /// Revoke a user's other login sessions when they log in.
    pub invalidate_all_sessions_on_login: Option<bool>,
    /// Whether devices are shared (the shared-device values then apply).
    pub is_shared_device_mode: Option<bool>,
    /// Idle timeout in shared-device mode (5–120).
    pub shared_device_idle_timeout_minutes: Option<i32>,
    /// Absolute timeout in shared-device mode (30–1440).
    pub shared_device_absolute_timeout_minutes: Option<i32>,
    /// Concurrent login sessions in shared-device mode (1–10).
    pub shared_device_max_concurrent_sessions: Option<i32>,
    /// Always revoke other login sessions at login in shared-device mode.
    pub shared_device_always_invalidate_all_sessions: Option<bool>,
}

/// Limits on uploaded content metadata (document 001's input validation).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentSettings {
    /// Largest accepted video file size, in bytes. Default 2 GiB.
    pub max_video_file_size_bytes: i64,
    /// Accepted video MIME types.
    pub allowed_video_mime_types: Vec<String>,
}

impl Default for ContentSettings {
    fn default() -> Self {
        Self {
            max_video_file_size_bytes: 2 * 1024 * 1024 * 1024,
            allowed_video_mime_types: [
                "video/mp4",
                "video/webm",
                "video/quicktime",
                "video/ogg",
                "video/x-matroska",
                "video/mpeg",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// A value has the wrong type, a key is unknown, or a file is malformed.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    OutOfRange(String),
}

impl Settings {
    /// Loads defaults, then `file` (or `session-manager.toml` when present),
    /// then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => path.to_owned(),
            None => PathBuf::from(DEFAULT_CONFIG_FILE),
        };
        let settings: Self = Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("SESSION_MANAGER_").ignore(&["config"]).split("__"))
            .merge(Env::raw().only(&["database_url"]).map(|_| "database.url".into()))
            .extract()
            .map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the ranges that the types alone cannot express.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let options = &self.session_security;
        let ranges = [
            ("idle_timeout_minutes", options.idle_timeout_minutes, 5, 120),
            (
                "absolute_timeout_minutes",
                options.absolute_timeout_minutes,
                30,
                1440,
            ),
            ("max_concurrent_sessions", options.max_concurrent_sessions, 1, 10),
            ("session_warning_minutes", options.session_warning_minutes, 1, 10),
            (
                "shared_device_idle_timeout_minutes",
                options.shared_device_idle_timeout_minutes,
                5,
                120,
            ),
            (
                "shared_device_absolute_timeout_minutes",
                options.shared_device_absolute_timeout_minutes,
                30,
                1440,
            ),
            (
                "shared_device_max_concurrent_sessions",
                options.shared_device_max_concurrent_sessions,
                1,
                10,
            ),
        ];
        for (name, value, min, max) in ranges {
            if let Some(value) = value
                && !(min..=max).contains(&value)
            {
                return Err(ConfigError::OutOfRange(format!(
                    "session_security.{name} is {value}; it must be between {min} and {max}"
                )));
            }
        }
        if let (Some(idle), Some(absolute)) = (options.idle_timeout_minutes, options.absolute_timeout_minutes)
            && idle > absolute
        {
            return Err(ConfigError::OutOfRange(format!(
                "session_security.idle_timeout_minutes ({idle}) must not exceed absolute_timeout_minutes ({absolute})"
            )));
        }
        if let (Some(idle), Some(absolute)) = (
            options.shared_device_idle_timeout_minutes,
            options.shared_device_absolute_timeout_minutes,
        ) && idle > absolute
        {
            return Err(ConfigError::OutOfRange(format!(
                "session_security.shared_device_idle_timeout_minutes ({idle}) must not exceed shared_device_absolute_timeout_minutes ({absolute})"
            )));
        }
        if let (Some(warning), Some(idle)) = (
            options.session_warning_minutes,
            options.shared_device_idle_timeout_minutes,
        ) && warning >= idle
        {
            return Err(ConfigError::OutOfRange(format!(
                "session_security.session_warning_minutes ({warning}) must be below shared_device_idle_timeout_minutes ({idle})"
            )));
        }
        if let (Some(warning), Some(idle)) = (options.session_warning_minutes, options.idle_timeout_minutes)
            && warning >= idle
        {
            return Err(ConfigError::OutOfRange(format!(
                "session_security.session_warning_minutes ({warning}) must be below idle_timeout_minutes ({idle})"
            )));
        }
        if let Some(secret) = &self.auth.token_secret
            && secret.expose_secret().len() < 32
        {
            return Err(ConfigError::OutOfRange(
                "auth.token_secret must be at least 32 characters".to_owned(),
            ));
        }
        for service in &self.auth.services {
            if service.token.expose_secret().len() < 32 {
                return Err(ConfigError::OutOfRange(format!(
                    "auth.services: the token of `{}` must be at least 32 characters",
                    service.name
                )));
            }
        }
        if self.auth.token_ttl_minutes < 1 {
            return Err(ConfigError::OutOfRange(
                "auth.token_ttl_minutes must be at least 1".to_owned(),
            ));
        }
        if self.content.max_video_file_size_bytes < 1 {
            return Err(ConfigError::OutOfRange(
                "content.max_video_file_size_bytes must be at least 1".to_owned(),
            ));
        }
        if self
            .content
            .allowed_video_mime_types
            .iter()
            .all(|mime| mime.trim().is_empty())
        {
            return Err(ConfigError::OutOfRange(
                "content.allowed_video_mime_types must name at least one MIME type".to_owned(),
            ));
        }
        if self.jobs.expiry_sweep_interval_secs == 0 {
            return Err(ConfigError::OutOfRange(
                "jobs.expiry_sweep_interval_secs must be at least 1".to_owned(),
            ));
        }
        if self.graphql.default_page_size == 0 || self.graphql.default_page_size > self.graphql.max_page_size
        {
            return Err(ConfigError::OutOfRange(format!(
                "graphql.default_page_size ({}) must be between 1 and graphql.max_page_size ({})",
                self.graphql.default_page_size, self.graphql.max_page_size
            )));
        }
        if self.graphql.max_page_size > MAX_PAGE_SIZE {
            return Err(ConfigError::OutOfRange(format!(
                "graphql.max_page_size ({}) must be at most {MAX_PAGE_SIZE}: query costs are reckoned with it",
                self.graphql.max_page_size
            )));
        }
        let throttle = &self.login_throttle;
        if throttle.email_max_failures < 1
            || throttle.address_max_failures < 1
            || throttle.email_lockout_secs < 1
            || throttle.address_interval_secs < 1
        {
            return Err(ConfigError::OutOfRange(
                "login_throttle: failures and lockouts must be at least 1".to_owned(),
            ));
        }
        if throttle.max_lockout_secs < throttle.email_lockout_secs {
            return Err(ConfigError::OutOfRange(
                "login_throttle.max_lockout_secs must be at least email_lockout_secs".to_owned(),
            ));
        }
        if throttle.window_secs < throttle.max_lockout_secs {
            return Err(ConfigError::OutOfRange(format!(
                "login_throttle.window_secs ({}) must be at least max_lockout_secs ({}): failures must \
                 outlive a lockout, or the next failure would start over",
                throttle.window_secs, throttle.max_lockout_secs
            )));
        }
        if self.database.sqlite_read_connections < 1 {
            return Err(ConfigError::OutOfRange(
                "database.sqlite_read_connections must be at least 1".to_owned(),
            ));
        }
        if self.events.reader_connections < 2 {
            return Err(ConfigError::OutOfRange(
                "events.reader_connections must be at least 2: one delivers while another replays".to_owned(),
            ));
        }
        let webhooks = &self.webhooks;
        if !(1..=50).contains(&webhooks.max_attempts) {
            return Err(ConfigError::OutOfRange(format!(
                "webhooks.max_attempts is {}; it must be between 1 and 50",
                webhooks.max_attempts
            )));
        }
        if webhooks.initial_backoff_secs < 1
            || webhooks.max_backoff_secs < webhooks.initial_backoff_secs
            || webhooks.max_backoff_secs > 86_400
        {
            return Err(ConfigError::OutOfRange(
                "webhooks.initial_backoff_secs must be at least 1, and max_backoff_secs between it and 86400"
                    .to_owned(),
            ));
        }
        if !(1..=300).contains(&webhooks.timeout_secs) || !(1..=256).contains(&webhooks.concurrency) {
            return Err(ConfigError::OutOfRange(
                "webhooks.timeout_secs must be between 1 and 300, webhooks.concurrency between 1 and 256"
                    .to_owned(),
            ));
        }
        if !(1..=3650).contains(&webhooks.log_retention_days) {
            return Err(ConfigError::OutOfRange(
                "webhooks.log_retention_days must be between 1 and 3650".to_owned(),
            ));
        }
        if self.events.retention_days < 1 {
            return Err(ConfigError::OutOfRange(
                "events.retention_days must be at least 1".to_owned(),
            ));
        }
        if !(1..=2160).contains(&self.invitations.ttl_hours) {
            return Err(ConfigError::OutOfRange(format!(
                "invitations.ttl_hours is {}; it must be between 1 and 2160 (90 days)",
                self.invitations.ttl_hours
            )));
        }
        for origin in &self.server.cors_allowed_origins {
            if !is_origin(origin) {
                return Err(ConfigError::OutOfRange(format!(
                    "server.cors_allowed_origins: `{origin}` is not an origin; write scheme, host and \
                     optional port, like `https://portal.example.org` (no path, no trailing slash)"
                )));
            }
        }
        Ok(())
    }
}

/// Whether `value` is a serialized origin: `http(s)://host[:port]`.
fn is_origin(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
            && url.origin().ascii_serialization() == value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn inconsistent_session_options_are_rejected() {
        let mut settings = Settings::default();
        settings.session_security.shared_device_idle_timeout_minutes = Some(60);
        settings.session_security.shared_device_absolute_timeout_minutes = Some(30);
        assert!(settings.validate().is_err());
        settings.session_security.shared_device_absolute_timeout_minutes = Some(60);
        assert!(settings.validate().is_ok());
        settings.session_security.session_warning_minutes = Some(10);
        settings.session_security.shared_device_idle_timeout_minutes = Some(10);
        assert!(settings.validate().is_err());
    }

    #[test]
    fn out_of_range_session_options_are_rejected() {
        let mut settings = Settings::default();
        settings.session_security.idle_timeout_minutes = Some(4);
        let error = settings
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("idle_timeout_minutes is 4"), "{error}");
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail fixes the closure's error type"
    )]
    fn a_file_then_the_environment_override_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                r#"
                [server]
                bind = "0.0.0.0:9000"
                [session_security]
                idle_timeout_minutes = 20
                "#,
            )?;
            jail.set_env("SESSION_MANAGER_SESSION_SECURITY__IDLE_TIMEOUT_MINUTES", "25");
            jail.set_env("DATABASE_URL", "postgres://postgres@127.0.0.1/x");
            let settings = Settings::load(Some(Path::new("custom.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(settings.server.bind.port(), 9000);
            assert_eq!(settings.session_security.idle_timeout_minutes, Some(25));
            assert!(settings.database.is_postgres());
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail fixes the closure's error type"
    )]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nbnid = \"0.0.0.0:1\"\n")?;
            assert!(Settings::load(Some(Path::new("typo.toml"))).is_err());
            Ok(())
        });
    }
}
