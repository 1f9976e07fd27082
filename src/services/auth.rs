//! Logging in and out, and recognising the caller of every request.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::session_context_change::ContextChangeEventType;
use entity::session_log::SessionEndReason;
use entity::{session_log, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Claims, Identity, ServiceCredentials, TokenKeys, UserIdentity, bearer_token};
use crate::config::AuthSettings;
use crate::error::{AppError, AppResult};
use crate::services::login_policy::{admit_login, deadline, expire_if_due};
use crate::services::passwords::PasswordPool;
use crate::services::settings::{effective_for, effective_for_member};
use crate::services::tenant_context::{self, AutomaticReason, TenantContext};
use crate::services::throttle;
use crate::state::AppState;
use crate::unit_of_work::{Outcome, write};

/// Longest stored user agent or device description, in characters.
const MAX_CLIENT_TEXT: usize = 512;

/// What the transport knows about the client.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The peer's IP address.
    pub ip_address: Option<String>,
}

/// At most one `login` per request, however many aliases or batched
/// operations ask for one: the transport puts one budget in every
/// operation of a request, and each login claims it.
#[derive(Debug, Default)]
pub(crate) struct LoginBudget(std::sync::atomic::AtomicBool);

impl LoginBudget {
    /// Claims the request's login; `false` when it was claimed already.
    pub(crate) fn claim(&self) -> bool {
        !self.0.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}

/// The long-lived handles authentication needs.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// Signs and checks login tokens.
    pub keys: Arc<TokenKeys>,
    /// Recognises other services.
    pub services: Arc<ServiceCredentials>,
    /// Token lifetime and `last_seen_at` resolution.
    pub settings: AuthSettings,
}

impl Authenticator {
    /// From the configuration.
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            keys: Arc::new(TokenKeys::new(settings.token_secret.as_ref())),
            services: Arc::new(ServiceCredentials::new(settings)),
            settings: settings.clone(),
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The bearer token.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The new login session.
    pub login_session: session_log::Model,
    /// Who logged in.
    pub user: user::Model,
    /// The tenant context it starts in.
    pub context: TenantContext,
}

fn clip(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().chars().take(MAX_CLIENT_TEXT).collect::<String>())
        .filter(|value| !value.is_empty())
}

/// Checks the password (throttled per e-mail address and client address,
/// on the bounded hashing pool), opens a login session in the default
/// tenant, and returns a token bound to it.
pub async fn login(
    state: &AppState,
    now: DateTime<Utc>,
    email: &str,
    password: &str,
    device_info: Option<String>,
    client: ClientInfo,
) -> AppResult<LoginOutcome> {
    let db = &state.db;
    let email = email.trim().to_lowercase();
    // Counted before anything is looked up, so that an address without an
    // account is throttled exactly like one with.
    let keys = throttle::keys_for(&email, client.ip_address.as_deref());
    let throttling = &state.settings.login_throttle;
    // Its own unit of work, committed before the (slow) password check.
    let admission = write(state, async |txn| {
        Ok(Outcome::quiet(throttle::admit(txn, throttling, now, keys).await?))
    })
    .await?;
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    // Verify against a throw-away hash when the account does not exist, so
    // that timing does not tell which e-mail addresses are registered.
    let stored_hash = match &account {
        Some(account) => account.password_hash.clone(),
        None => dummy_hash(&state.passwords).await?,
    };
    let matches = state.passwords.verify(password.to_owned(), stored_hash).await?;
    let account = match account {
        Some(account) if matches => account,
        other => {
            // The failure is recorded (committed), and the answer is still an error.
            let account_id = other.as_ref().map(|account| account.id);
            return write(state, async |txn| {
                throttle::failed(txn, throttling, now, &admission, account_id).await?;
                Ok(Outcome::refused(AppError::Unauthenticated(
                    "invalid e-mail or password".to_owned(),
                )))
            })
            .await;
        }
    };
    // The right password gives back what was counted in advance, in a unit
    // of work of its own: a login refused after it (the concurrent-session
    // policy, no tenant) must not count as a failure.
    write(state, async |txn| {
        throttle::succeeded(txn, &admission).await?;
        Ok(Outcome::quiet(()))
    })
    .await?;
    let outcome = write(state, async |txn| {
        open_login_session(state, txn, now, account, device_info, client).await
    })
    .await?;
    tracing::info!(user_id = %outcome.user.id, login_session_id = %outcome.login_session.id, "login");
    Ok(outcome)
}

/// Opens the login session of a verified login, inside its unit of work:
/// makes room under the concurrent-session policy, records the tenant
/// context, and signs the token (before the commit: nothing that can fail
/// comes after it).
async fn open_login_session(
    state: &AppState,
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    account: user::Model,
    device_info: Option<String>,
    client: ClientInfo,
) -> AppResult<Outcome<LoginOutcome>> {
    let authenticator = &state.authenticator;
    // Logins of one user take turns, so that the concurrent-session limit
    // holds however many arrive at once (SQLite's single writer already
    // serialises them).
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        user::Entity::find_by_id(account.id)
            .lock_exclusive()
            .one(txn)
            .await?;
    }
    let context = tenant_context::initial_context(txn, now, &account).await?;
    let settings = effective_for(txn, &state.settings_cache, &account, context.tenant_id).await?;
    let events = admit_login(
        txn,
        &state.settings_cache,
        &account,
        &settings,
        authenticator.settings.concurrent_session_policy,
        now,
    )
    .await?;
    let login_session = session_log::ActiveModel {
        user_id: Set(account.id),
        tenant_id: Set(context.tenant_id),
        login_at: Set(now),
        last_seen_at: Set(now),
        user_agent: Set(clip(client.user_agent)),
        ip_address: Set(clip(client.ip_address)),
        device_info: Set(clip(device_info)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    if let Some(tenant_id) = context.tenant_id {
        tenant_context::record(
            txn,
            now,
            account.id,
            tenant_id,
            ContextChangeEventType::ApplyDefaultTenant,
            json!({
                "fromTenantId": null,
                "toTenantId": tenant_id,
                "reason": AutomaticReason::Login.as_str(),
                "loginSessionId": login_session.id,
            }),
        )
        .await?;
    }
    // Signed before the commit: nothing that can fail comes after it.
    let expires_at = (now + Duration::minutes(authenticator.settings.token_ttl_minutes))
        .min(now + Duration::minutes(i64::from(settings.absolute_timeout_minutes)));
    let token = authenticator
        .keys
        .issue(account.id, login_session.id, now, expires_at)?;
    Ok(Outcome::announcing(
        LoginOutcome {
            token,
            expires_at,
            login_session,
            user: account,
            context,
        },
        events,
    ))
}

async fn dummy_hash(passwords: &PasswordPool) -> AppResult<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| passwords.hash("not a real password".to_owned()))
        .await
        .cloned()
}

/// Whether a request counts as the user's activity (moves `last_seen_at`,
/// and with it the idle timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activity {
    /// Something the user did: an HTTP operation, a WebSocket `subscribe`
    /// or operation message.
    Record,
    /// Looking again on the server's own account (a connection checking
    /// its identity when an event or a deadline says so).
    Ignore,
}

/// Recognises the caller from an `Authorization` header value: a service
/// credential, or a login token whose login session is still open. Refused
/// credentials give [`Identity::Rejected`] (or [`Identity::Ended`]), so that
/// the request still runs (a `login` mutation works with a stale token) but
/// nothing needing an identity does.
///
/// Everything it needs comes from the identity cache: no query in the
/// steady state. The database is read again only when the cached login
/// session looks past its deadline (another instance may have seen
/// activity), and written only when it is.
pub(crate) async fn authenticate(
    state: &AppState,
    now: DateTime<Utc>,
    authorization: Option<&str>,
    activity: Activity,
) -> AppResult<Identity> {
    let Some(header) = authorization else {
        return Ok(Identity::Anonymous);
    };
    let Some(token) = bearer_token(header) else {
        return Ok(Identity::Rejected(
            "send credentials as `Authorization: Bearer <token>`".to_owned(),
        ));
    };
    let authenticator = &state.authenticator;
    if let Some(service) = authenticator.services.identify(token) {
        return Ok(Identity::Service(service));
    }
    // The expiry is checked after the login session: a token that expired
    // with its session's absolute timeout still records why the session ended.
    let claims = match authenticator.keys.verify_signature(token) {
        Ok(claims) => claims,
        Err(error) => return Ok(Identity::Rejected(error.message())),
    };
    identify(state, now, &claims, activity).await
}

/// The identity of a verified token's claims.
async fn identify(
    state: &AppState,
    now: DateTime<Utc>,
    claims: &Claims,
    activity: Activity,
) -> AppResult<Identity> {
    let (db, cache) = (&state.db, &state.identity);
    let gone = || Identity::Rejected("the login session no longer exists: log in again".to_owned());
    let Some(mut entry) = cache.login_session(db, claims.sid).await? else {
        return Ok(gone());
    };
    if entry.row.user_id != claims.sub {
        return Ok(gone());
    }
    if let Some(reason) = entry.row.end_reason {
        return Ok(Identity::Ended(reason));
    }
    let Some(account) = cache.account(db, claims.sub).await? else {
        return Ok(Identity::Rejected("the account no longer exists".to_owned()));
    };
    let memberships = cache.memberships(db, account.id).await?;
    // Timeouts are enforced here too, not only by the sweeper: no request
    // runs in a login session past its idle or absolute timeout.
    let settings = effective_for_member(
        db,
        &state.settings_cache,
        &account,
        &memberships,
        entry.row.tenant_id,
    )
    .await?;
    let mut log = entry.current();
    if now >= deadline(&log, &settings).at {
        // Past its deadline as far as this instance knows: another may have
        // seen activity since, so the stored row decides.
        let Some(fresh) = cache.reload_login_session(db, claims.sid).await? else {
            return Ok(gone());
        };
        if let Some(reason) = fresh.row.end_reason {
            return Ok(Identity::Ended(reason));
        }
        let mut latest = fresh.current();
        latest.last_seen_at = latest.last_seen_at.max(log.last_seen_at);
        let due = deadline(&latest, &settings);
        if now >= due.at {
            // A unit of work of its own, so the expiry is logged with it.
            write(state, async |txn| {
                let expired = expire_if_due(txn, &latest, &settings, now).await?;
                Ok(Outcome::announcing((), expired.into_iter().collect()))
            })
            .await?;
            return Ok(Identity::Ended(due.reason));
        }
        (entry, log) = (fresh, latest);
    }
    if claims.exp <= now.timestamp() {
        return Ok(Identity::Rejected(
            "the token has expired: log in again".to_owned(),
        ));
    }
    let context = match tenant_context::resolve(state, now, &log, &account, &memberships).await {
        Ok(context) => context,
        Err(AppError::Forbidden(reason)) => return Ok(Identity::NoAccess(reason)),
        Err(error) => return Err(error),
    };
    if activity == Activity::Record {
        cache.record_activity(
            &entry,
            now,
            state.authenticator.settings.last_seen_resolution_secs,
        );
        log.last_seen_at = log.last_seen_at.max(now);
    }
    log.tenant_id = context.tenant_id;
    Ok(Identity::User(Arc::new(UserIdentity {
        user_id: account.id,
        login_session_id: log.id,
        tenant_id: context.tenant_id,
        role: context.role,
        is_super_admin: account.is_super_admin,
        account,
        login_session: Arc::new(log),
        memberships,
    })))
}

/// When the login session of `viewer` next needs looking at without any
/// event: its idle or absolute deadline (as this instance knows its
/// activity), or its token's expiry if sooner.
pub(crate) async fn next_deadline(
    state: &AppState,
    viewer: &UserIdentity,
    token_expires_at: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    let log = &viewer.login_session;
    let settings = effective_for_member(
        &state.db,
        &state.settings_cache,
        &viewer.account,
        &viewer.memberships,
        log.tenant_id,
    )
    .await?;
    Ok(deadline(log, &settings).at.min(token_expires_at))
}

/// How an end reason reads in a message.
pub(crate) fn end_reason_text(reason: SessionEndReason) -> &'static str {
    match reason {
        SessionEndReason::Logout => "logged out",
        SessionEndReason::Revoked => "revoked",
        SessionEndReason::Evicted => "ended by a newer login",
        SessionEndReason::Invalidated => "invalidated by a new login",
        SessionEndReason::ExpiredIdle => "expired after inactivity",
        SessionEndReason::ExpiredAbsolute => "reached its maximum lifetime",
    }
}

/// Ends a login session for `reason`, unless it has already ended; returns
/// whether it was open.
pub(crate) async fn end_login_session(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    login_session_id: Uuid,
    reason: SessionEndReason,
) -> AppResult<bool> {
    let ended = session_log::Entity::update_many()
        .col_expr(session_log::Column::LogoutAt, Expr::value(now))
        .col_expr(session_log::Column::EndReason, Expr::value(reason))
        .col_expr(session_log::Column::UpdatedAt, Expr::value(now))
        .filter(session_log::Column::Id.eq(login_session_id))
        .filter(session_log::Column::LogoutAt.is_null())
        .exec(db)
        .await?;
    Ok(ended.rows_affected == 1)
}
