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
//!
//! One file per domain: [`tenants`], [`schools`], [`users`],
//! [`memberships`] and [`guardian_links`]; what they share is here.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use email_address::{EmailAddress, Options};
use entity::session_context_change::ContextChangeEventType;
use entity::session_log::SessionEndReason;
use entity::tenant_membership::MembershipRole;
use entity::{guardian_link, invitation, school, session_log, tenant, tenant_membership, user};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityName, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::UserIdentity;
use crate::config::LoginThrottleSettings;
use crate::error::{AppError, AppResult};
use crate::events::{AccountChange, Event, MembershipChange, OrganisationChange};
use crate::services::audit::{self, AccountAction, AccountRecord};
use crate::services::invitations::{InvitationInput, ensure_school_in_tenant, invite};
use crate::services::login_policy::ended_event;
use crate::services::passwords::{PasswordPool, check_new_password};
use crate::services::scope::Scope;
use crate::services::tenancy::{MAX_TENANT_NAME, visible_tenants};
use crate::services::tenant_context::{default_membership, membership, record};
use crate::services::throttle;
use crate::services::validation::required_name;
use crate::state::AppState;
use crate::unit_of_work::{Outcome, write};

mod guardian_links;
mod memberships;
mod schools;
mod tenants;
mod users;

pub(crate) use guardian_links::*;
pub use memberships::*;
pub use schools::*;
pub use tenants::*;
pub(crate) use users::*;

/// Longest accepted school name, in characters.
pub(crate) const MAX_SCHOOL_NAME: usize = 255;
/// Longest accepted user name, in characters.
pub(crate) const MAX_USER_NAME: usize = 255;
/// Longest accepted e-mail address, in characters.
pub(crate) const MAX_EMAIL: usize = 320;

/// Why the application chose a default tenant for a user (written in the
/// metadata of the `SET_DEFAULT_TENANT` row).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultReason {
    /// The user's first membership.
    FirstMembership,
    /// The default membership was removed (or its tenant deleted).
    DefaultRemoved,
}

impl DefaultReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::FirstMembership => "first_membership",
            Self::DefaultRemoved => "default_membership_removed",
        }
    }
}

// ---------------------------------------------------------------- validation

/// Trims and lower-cases an e-mail address and checks its format
/// (`name@example.org`: a top-level domain, no display text, no IP literal).
pub(crate) fn normalize_email(field: &str, raw: &str) -> AppResult<String> {
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

/// Turns a unique-constraint violation into `CONFLICT` with `message`.
pub(crate) fn conflict_on_unique(error: DbErr, message: impl FnOnce() -> String) -> AppError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(message()),
        _ => AppError::from(error),
    }
}

pub(crate) fn email_taken() -> String {
    "a user with this e-mail address already exists".to_owned()
}

/// Fails with `CONFLICT` when another account (than `except`) uses `email`.
pub(crate) async fn ensure_email_free(
    db: &impl ConnectionTrait,
    email: &str,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut query = user::Entity::find().filter(user::Column::Email.eq(email));
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(AppError::Conflict(email_taken()));
    }
    Ok(())
}

/// Gives each of `user_ids` (who just lost their default membership, in
/// `from_tenant`) their oldest remaining membership as default, recorded as
/// `SET_DEFAULT_TENANT`. Users without another membership keep none.
pub(crate) async fn promote_defaults(
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

pub(crate) async fn record_default(
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
}
