//! Login sessions: logging in and out, the device list, revocation, and
//! live events.

mod live;

pub use live::{LoginSessionEvent, LoginSessionEventKind, LoginSessionsSubscription};

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::session_log::{self, SessionEndReason};
use uuid::Uuid;

use crate::auth::Identity;
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::graphql::loaders::{TenantById, UserById};
use crate::graphql::tenancy::{MembershipRole, Tenant, User};
use crate::services::auth::{self as auth_service};
use crate::services::login_policy;
use crate::services::login_sessions::{self as service, LoginSessionFilter};
use crate::unit_of_work::write;

/// Most rows a login-session list returns.
const MAX_LIST: i32 = 200;

/// Why a login session ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum LoginSessionEndReason {
    /// The user logged out.
    Logout,
    /// The user or an administrator revoked it.
    Revoked,
    /// A newer login pushed it out (concurrent-session limit).
    Evicted,
    /// A new login invalidated every other session.
    Invalidated,
    /// Idle for longer than the idle timeout.
    ExpiredIdle,
    /// Older than the absolute timeout.
    ExpiredAbsolute,
}

impl From<SessionEndReason> for LoginSessionEndReason {
    fn from(reason: SessionEndReason) -> Self {
        match reason {
            SessionEndReason::Logout => Self::Logout,
            SessionEndReason::Revoked => Self::Revoked,
            SessionEndReason::Evicted => Self::Evicted,
            SessionEndReason::Invalidated => Self::Invalidated,
            SessionEndReason::ExpiredIdle => Self::ExpiredIdle,
            SessionEndReason::ExpiredAbsolute => Self::ExpiredAbsolute,
        }
    }
}

/// An authenticated session of a user on one device.
pub struct LoginSession(pub session_log::Model);

#[Object(serial)]
impl LoginSession {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The user it belongs to.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx.load_one(UserById(self.0.user_id)).await?.map(User))
    }
    /// The tenant it works in.
    async fn active_tenant(&self, ctx: &Context<'_>) -> Result<Option<Tenant>> {
        let Some(tenant_id) = self.0.tenant_id else {
            return Ok(None);
        };
        Ok(ctx.load_one(TenantById(tenant_id)).await?.map(Tenant))
    }
    /// When the user logged in.
    async fn login_at(&self) -> DateTime<Utc> {
        self.0.login_at
    }
    /// Last request seen (kept to the minute).
    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }
    /// When it ended, if it has.
    async fn logout_at(&self) -> Option<DateTime<Utc>> {
        self.0.logout_at
    }
    /// Why it ended, if it has.
    async fn end_reason(&self) -> Option<LoginSessionEndReason> {
        self.0.end_reason.map(Into::into)
    }
    /// Whether it is still open.
    async fn is_active(&self) -> bool {
        self.0.logout_at.is_none()
    }
    /// Whether this request runs in it.
    async fn is_current(&self, ctx: &Context<'_>) -> bool {
        matches!(ctx.identity(), Identity::User(viewer) if viewer.login_session_id == self.0.id)
    }
    /// The browser or app that logged in.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// The address it logged in from.
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }
    /// The device, as the client described it.
    async fn device_info(&self) -> Option<&str> {
        self.0.device_info.as_deref()
    }
}

/// The result of a successful login.
/// A login session kept open by `extendLoginSession`.
#[derive(SimpleObject)]
pub(crate) struct LoginSessionExtension {
    /// The login session, with its new `lastSeenAt`.
    login_session: LoginSession,
    /// When it now expires unless the user is active again.
    expires_at: DateTime<Utc>,
    /// Which timeout that is: `expired_idle`, or `expired_absolute` once
    /// the maximum lifetime comes first (no extension moves it: log in
    /// again).
    expiry_reason: String,
}

#[derive(SimpleObject)]
pub(crate) struct LoginPayload {
    /// Send it as `Authorization: Bearer <token>` (or in the WebSocket
    /// `connection_init` payload as `{"Authorization": "Bearer <token>"}`).
    pub token: String,
    /// When the token stops working (the login session may end sooner).
    pub expires_at: DateTime<Utc>,
    /// The new login session.
    pub login_session: LoginSession,
    /// Who logged in.
    pub user: User,
    /// The tenant the session starts in (the default tenant).
    pub active_tenant_id: Option<Uuid>,
    /// The user's role there.
    pub role: Option<MembershipRole>,
}

fn list_limit(first: Option<i32>) -> Result<u64, AppError> {
    match first {
        None => Ok(50),
        Some(first) if (1..=MAX_LIST).contains(&first) => Ok(u64::try_from(first).unwrap_or(50)),
        Some(_) => Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_LIST}"),
        )),
    }
}

/// Login-session queries.
#[derive(Default)]
pub(crate) struct LoginSessionsQuery;

#[Object(serial)]
impl LoginSessionsQuery {
    /// Your login sessions (the device list), newest first.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, 50, 200, child_complexity)")]
    async fn my_login_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true, desc = "Only sessions still open.")] active_only: bool,
        #[graphql(desc = "At most this many (1–200, default 50).")] first: Option<i32>,
    ) -> Result<Vec<LoginSession>> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let limit = list_limit(first)?;
        Ok(service::list_own(&state.db, viewer.user_id, active_only, limit)
            .await?
            .into_iter()
            .map(LoginSession)
            .collect())
    }

    /// Login sessions of your tenant's members (tenant admins), newest first.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, 50, 200, child_complexity)")]
    async fn login_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this user's.")] user_id: Option<Uuid>,
        #[graphql(default = true, desc = "Only sessions still open.")] active_only: bool,
        #[graphql(desc = "At most this many (1–200, default 50).")] first: Option<i32>,
    ) -> Result<Vec<LoginSession>> {
        let scope = ctx.scope()?;
        scope.require_tenant_admin()?;
        let state = ctx.state()?;
        let limit = list_limit(first)?;
        let filter = LoginSessionFilter { user_id, active_only };
        Ok(service::list(&state.db, &scope, filter, limit)
            .await?
            .into_iter()
            .map(LoginSession)
            .collect())
    }
}

/// Login-session mutations.
#[derive(Default)]
pub(crate) struct LoginSessionsMutation;

#[Object(serial)]
impl LoginSessionsMutation {
    /// Logs in with e-mail and password. Opens a login session in your
    /// default tenant and returns a token bound to it. Failed attempts are
    /// throttled per e-mail address and per client address
    /// (`TOO_MANY_ATTEMPTS`, with `extensions.retryAfter`); a request may
    /// log in once (`ONE_LOGIN_PER_REQUEST`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        #[graphql(desc = "A description of the device, e.g. \"Alex's iPad\".")] device_info: Option<String>,
    ) -> Result<LoginPayload> {
        let state = ctx.state()?;
        if let Ok(budget) = ctx.data::<std::sync::Arc<auth_service::LoginBudget>>()
            && !budget.claim()
        {
            return Err(AppError::OneLoginPerRequest.into());
        }
        let outcome = auth_service::login(
            state,
            state.clock.now(),
            &email,
            &password,
            device_info,
            ctx.client_info(),
        )
        .await?;
        Ok(LoginPayload {
            token: outcome.token,
            expires_at: outcome.expires_at,
            login_session: LoginSession(outcome.login_session),
            user: User(outcome.user),
            active_tenant_id: outcome.context.tenant_id,
            role: outcome.context.role.map(Into::into),
        })
    }

    /// Ends the current login session; its token stops working at once.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let ended = write(state, async |txn| service::logout(txn, now, viewer).await).await?;
        Ok(ended)
    }

    /// Revokes one login session: your own, or (tenant admins) one of a
    /// member of your tenant. Its token stops working at once.
    async fn revoke_login_session(&self, ctx: &Context<'_>, id: Uuid) -> Result<LoginSession> {
        let viewer = ctx.viewer()?;
        let scope = ctx.scope().ok().filter(|scope| scope.is_tenant_admin());
        let state = ctx.state()?;
        let now = state.clock.now();
        let revoked = write(state, async |txn| {
            service::revoke(txn, now, viewer.user_id, scope.as_ref(), id).await
        })
        .await?;
        Ok(LoginSession(revoked))
    }

    /// Keeps your login session open ("stay signed in"): counts as
    /// activity, so its idle deadline moves to now plus the idle timeout
    /// (never past the absolute timeout). Every client of yours watching
    /// `loginSessionEvents` gets EXTENDED with the new `expiresAt`.
    async fn extend_login_session(&self, ctx: &Context<'_>) -> Result<LoginSessionExtension> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let (row, due) = write(state, async |txn| {
            service::extend(txn, &state.settings_cache, now, viewer).await
        })
        .await?;
        Ok(LoginSessionExtension {
            login_session: LoginSession(row),
            expires_at: due.at,
            expiry_reason: login_policy::end_reason_name(due.reason).to_owned(),
        })
    }

    /// Revokes every other open login session of yours; returns how many.
    async fn revoke_other_login_sessions(&self, ctx: &Context<'_>) -> Result<i32> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let now = state.clock.now();
        let keep = Some(viewer.login_session_id);
        let ended = write(state, async |txn| {
            service::revoke_others_announced(txn, now, viewer.user_id, keep).await
        })
        .await?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }
}
