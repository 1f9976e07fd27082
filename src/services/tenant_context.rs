//! The tenant context of a login session (document 002): applied at login,
//! validated on every request, switched and defaulted on request, reset when
//! access is lost; every change written to `session_context_changes`.

use chrono::{DateTime, Utc};
use entity::session_context_change::ContextChangeEventType;
use entity::tenant_membership::MembershipRole;
use entity::{invitation, session_context_change, session_log, tenant, tenant_membership, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events::{Event, LoginSessionChange, LoginSessionEvent, MembershipChange};
use crate::state::AppState;
use crate::unit_of_work::{Outcome, write};

/// The tenant a login session works in, and the user's role there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantContext {
    /// The active tenant; `None` only for a super admin with no tenant chosen.
    pub tenant_id: Option<Uuid>,
    /// The user's role in it (`None` for a super admin who is not a member).
    pub role: Option<MembershipRole>,
}

/// Why a context was set without the user asking.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AutomaticReason {
    /// At login.
    Login,
    /// The login session had no tenant (e.g. its tenant was deleted).
    NoContext,
    /// The user lost access to the active tenant.
    AccessLost,
}

impl AutomaticReason {
    /// The reason as written in the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::NoContext => "no_context",
            Self::AccessLost => "access_lost",
        }
    }
}

/// The user's membership in `tenant_id`, if any.
pub async fn membership(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    tenant_id: Uuid,
) -> AppResult<Option<tenant_membership::Model>> {
    Ok(tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::TenantId.eq(tenant_id))
        .one(db)
        .await?)
}

/// The user's default membership, if any.
pub(crate) async fn default_membership(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> AppResult<Option<tenant_membership::Model>> {
    Ok(tenant_membership::Entity::find()
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::IsDefault.eq(true))
        .one(db)
        .await?)
}

/// Writes one row of the context-change trail.
pub async fn record(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_id: Uuid,
    tenant_id: Uuid,
    event_type: ContextChangeEventType,
    metadata: serde_json::Value,
) -> AppResult<()> {
    session_context_change::ActiveModel {
        user_id: Set(user_id),
        tenant_id: Set(tenant_id),
        event_type: Set(event_type),
        metadata: Set(Some(metadata)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The context a new login session starts in: the default tenant. Without
/// one, only a super admin may log in (and then picks a tenant), or an
/// account with an open invitation (which can then only answer it).
pub(crate) async fn initial_context(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user: &user::Model,
) -> AppResult<TenantContext> {
    let default = default_membership(db, user.id).await?;
    let tenantless_allowed = default.is_none() && may_be_tenantless(db, now, user).await?;
    default_context(
        default,
        tenantless_allowed,
        "you have no default tenant: ask an administrator to add you to a tenant",
    )
}

/// Whether `user` may be logged in without any tenant: a super admin, or
/// an account with an open invitation to answer.
async fn may_be_tenantless(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user: &user::Model,
) -> AppResult<bool> {
    if user.is_super_admin {
        return Ok(true);
    }
    Ok(invitation::Entity::find()
        .filter(invitation::Column::InviteeId.eq(user.id))
        .filter(invitation::Column::ExpiresAt.gt(now))
        .count(db)
        .await?
        > 0)
}

/// The context of the default membership; without one, no tenant when
/// `tenantless_allowed` and an access error (`refusal`) otherwise.
fn default_context(
    default: Option<tenant_membership::Model>,
    tenantless_allowed: bool,
    refusal: &str,
) -> AppResult<TenantContext> {
    match default {
        Some(membership) => Ok(TenantContext {
            tenant_id: Some(membership.tenant_id),
            role: Some(membership.role),
        }),
        None if tenantless_allowed => Ok(TenantContext {
            tenant_id: None,
            role: None,
        }),
        None => Err(AppError::forbidden(refusal)),
    }
}

/// Validates the context of `log` for this request against the user's
/// `memberships` (all of them), resetting it to the default tenant when
/// access was lost or no context is set (document 002's flow). Concurrent
/// requests reset at most once.
pub(crate) async fn resolve(
    state: &AppState,
    now: DateTime<Utc>,
    log: &session_log::Model,
    user: &user::Model,
    memberships: &[tenant_membership::Model],
) -> AppResult<TenantContext> {
    let db = &state.db;
    let reason = match log.tenant_id {
        Some(tenant_id) => {
            if let Some(membership) = memberships
                .iter()
                .find(|membership| membership.tenant_id == tenant_id)
            {
                return Ok(TenantContext {
                    tenant_id: Some(tenant_id),
                    role: Some(membership.role),
                });
            }
            if user.is_super_admin {
                return Ok(TenantContext {
                    tenant_id: Some(tenant_id),
                    role: None,
                });
            }
            AutomaticReason::AccessLost
        }
        None => AutomaticReason::NoContext,
    };
    let default = memberships
        .iter()
        .find(|membership| membership.is_default)
        .cloned();
    let to = default.as_ref().map(|membership| membership.tenant_id);
    let tenantless_allowed = to.is_none() && may_be_tenantless(db, now, user).await?;
    // Already where a reset would put it (both unset, for an account with no
    // tenant): nothing to write or announce, so a login session refused for
    // want of any tenant does not append on every request it makes.
    if log.tenant_id == to {
        return default_context(
            default,
            tenantless_allowed,
            "you no longer have access to the tenant and have no default tenant: ask an administrator",
        );
    }
    // Only the request that actually moves the context records it, and the
    // move and its record commit together.
    write(state, async |txn| {
        let moved = session_log::Entity::update_many()
            .col_expr(session_log::Column::TenantId, Expr::value(to))
            .col_expr(session_log::Column::UpdatedAt, Expr::value(now))
            .filter(session_log::Column::Id.eq(log.id))
            .filter(match log.tenant_id {
                Some(from) => session_log::Column::TenantId.eq(from),
                None => session_log::Column::TenantId.is_null(),
            })
            .exec(txn)
            .await?
            .rows_affected
            == 1;
        let metadata = json!({
            "fromTenantId": log.tenant_id,
            "toTenantId": to,
            "reason": reason.as_str(),
            "loginSessionId": log.id,
        });
        let event = match reason {
            AutomaticReason::AccessLost => ContextChangeEventType::ResetToDefaultTenant,
            AutomaticReason::Login | AutomaticReason::NoContext => ContextChangeEventType::ApplyDefaultTenant,
        };
        if moved && let Some(logged_tenant) = to.or(log.tenant_id) {
            record(txn, now, user.id, logged_tenant, event, metadata).await?;
        }
        let events = if moved {
            vec![switched(log.id, user.id, now)]
        } else {
            Vec::new()
        };
        Ok(Outcome::announcing((), events))
    })
    .await?;
    default_context(
        default,
        tenantless_allowed,
        "you no longer have access to the tenant and have no default tenant: ask an administrator",
    )
}

/// Moves a login session to another tenant the user may access.
pub(crate) async fn switch_tenant(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user: &user::Model,
    login_session_id: Uuid,
    tenant_id: Uuid,
) -> AppResult<Outcome<TenantContext>> {
    let mut events = Vec::new();
    let membership = membership(txn, user.id, tenant_id).await?;
    let role = match membership {
        Some(membership) => Some(membership.role),
        None if user.is_super_admin && tenant::Entity::find_by_id(tenant_id).one(txn).await?.is_some() => {
            None
        }
        None => return Err(AppError::NotFound { resource: "tenant" }),
    };
    let log = session_log::Entity::find_by_id(login_session_id)
        .one(txn)
        .await?
        .ok_or(AppError::NotFound {
            resource: "login session",
        })?;
    if log.tenant_id != Some(tenant_id) {
        let from = log.tenant_id;
        let mut change: session_log::ActiveModel = log.into();
        change.tenant_id = Set(Some(tenant_id));
        change.updated_at = Set(now);
        change.update(txn).await?;
        record(
            txn,
            now,
            user.id,
            tenant_id,
            ContextChangeEventType::SwitchTenant,
            json!({ "fromTenantId": from, "toTenantId": tenant_id, "loginSessionId": login_session_id }),
        )
        .await?;
        events.push(switched(login_session_id, user.id, now));
    }
    Ok(Outcome::announcing(
        TenantContext {
            tenant_id: Some(tenant_id),
            role,
        },
        events,
    ))
}

/// Makes `tenant_id` the user's default tenant (a membership is required).
pub(crate) async fn set_default_tenant(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    user_id: Uuid,
    login_session_id: Uuid,
    tenant_id: Uuid,
) -> AppResult<Outcome<tenant_membership::Model>> {
    let target = membership(txn, user_id, tenant_id)
        .await?
        .ok_or(AppError::NotFound { resource: "tenant" })?;
    let previous = default_membership(txn, user_id).await?;
    if previous.as_ref().map(|membership| membership.id) == Some(target.id) {
        return Ok(Outcome::quiet(target));
    }
    tenant_membership::Entity::update_many()
        .col_expr(tenant_membership::Column::IsDefault, Expr::value(false))
        .col_expr(tenant_membership::Column::UpdatedAt, Expr::value(now))
        .filter(tenant_membership::Column::UserId.eq(user_id))
        .filter(tenant_membership::Column::IsDefault.eq(true))
        .exec(txn)
        .await?;
    let mut change: tenant_membership::ActiveModel = target.into();
    change.is_default = Set(true);
    change.updated_at = Set(now);
    let updated = change.update(txn).await?;
    record(
        txn,
        now,
        user_id,
        tenant_id,
        ContextChangeEventType::SetDefaultTenant,
        json!({
            "fromTenantId": previous.map(|membership| membership.tenant_id),
            "toTenantId": tenant_id,
            "loginSessionId": login_session_id,
        }),
    )
    .await?;
    let changed = Event::membership(MembershipChange::DefaultChanged, user_id, tenant_id, now);
    Ok(Outcome::announcing(updated, vec![changed]))
}

/// The event of a login session whose tenant context moved.
fn switched(login_session_id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Event {
    Event::LoginSession(LoginSessionEvent {
        change: LoginSessionChange::TenantSwitched,
        login_session_id,
        user_id,
        end_reason: None,
        expires_at: None,
        occurred_at: now,
    })
}
