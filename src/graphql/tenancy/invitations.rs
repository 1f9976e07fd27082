//! Invitations into tenants, and lifting login lockouts.

use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Membership, MembershipRole};
use crate::error::AppError;
use crate::graphql::ContextExt;
use crate::services::invitations::{self as service, InvitationInput, InvitationView};
use crate::services::unlock;
use crate::unit_of_work::Outcome;

/// An open invitation of an e-mail address into a tenant. It is answered by
/// the account with that address (`acceptInvitation`,
/// `declineInvitation`), revoked by the tenant's administrators, or lapses
/// at `expiresAt`.
pub struct Invitation(pub InvitationView);

/// An open invitation of an e-mail address into a tenant.
#[Object(serial)]
impl Invitation {
    /// Identifier.
    async fn id(&self) -> Uuid {
        self.0.invitation.id
    }
    /// The tenant the invitee would join.
    async fn tenant_id(&self) -> Uuid {
        self.0.invitation.tenant_id
    }
    /// Its name.
    async fn tenant_name(&self) -> &str {
        &self.0.tenant_name
    }
    /// The invited address (normalised).
    async fn email(&self) -> &str {
        &self.0.invitation.email
    }
    /// The role the invitee would have.
    async fn role(&self) -> MembershipRole {
        self.0.invitation.role.into()
    }
    /// The school the invitee would have in the tenant, if any.
    async fn school_id(&self) -> Option<Uuid> {
        self.0.invitation.school_id
    }
    /// The administrator who sent it (last).
    async fn invited_by_id(&self) -> Option<Uuid> {
        self.0.invitation.invited_by_id
    }
    /// When it lapses.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.invitation.expires_at
    }
    /// When it was first sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.invitation.created_at
    }
}

/// An invitation to send.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// The invitee's e-mail address; trimmed and lower-cased.
    pub email: String,
    /// The role they would have.
    #[graphql(default_with = "MembershipRole::Member")]
    pub role: MembershipRole,
    /// A school of the active tenant.
    pub school_id: Option<Uuid>,
}

/// Invitation queries.
#[derive(Default)]
pub struct InvitationQuery;

#[Object(serial)]
impl InvitationQuery {
    /// The open invitations of the active tenant, newest first (at most
    /// 200). Tenant admins.
    #[graphql(complexity = "crate::graphql::limits::list_cost(200, child_complexity)")]
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<Invitation>> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let rows = service::list_for_tenant(&state.db, state.clock.now(), &scope).await?;
        let views = service::with_tenant_names(&state.db, rows).await?;
        Ok(views.into_iter().map(Invitation).collect())
    }

    /// The open invitations addressed to you, into any tenant, newest first
    /// (at most 200): yours to see whatever your active tenant is.
    #[graphql(complexity = "crate::graphql::limits::list_cost(200, child_complexity)")]
    async fn my_invitations(&self, ctx: &Context<'_>) -> Result<Vec<Invitation>> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let account = service::account_of(&state.db, viewer.user_id).await?;
        let rows = service::list_mine(&state.db, state.clock.now(), &account).await?;
        let views = service::with_tenant_names(&state.db, rows).await?;
        Ok(views.into_iter().map(Invitation).collect())
    }
}

/// Invitation mutations. Each runs in one transaction.
#[derive(Default)]
pub struct InvitationMutation;

#[Object(serial)]
impl InvitationMutation {
    /// Invites an e-mail address into the active tenant with a role (and a
    /// school), open for `invitations.ttl_hours`. The answer is the same
    /// whether or not the address has an account; inviting it again
    /// refreshes the open invitation. An existing member is `CONFLICT`.
    /// Tenant admins.
    async fn invite_member(&self, ctx: &Context<'_>, input: InviteMemberInput) -> Result<Invitation> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let ttl = Duration::hours(state.settings.invitations.ttl_hours);
        let view = crate::unit_of_work::write(state, async |txn| {
            let invitation = service::invite(
                txn,
                state.clock.now(),
                &scope,
                ttl,
                InvitationInput {
                    email: input.email,
                    role: input.role.into(),
                    school_id: input.school_id,
                },
            )
            .await?;
            Ok(Outcome::quiet(
                service::with_tenant_names(txn, vec![invitation]).await?,
            ))
        })
        .await?;
        view.into_iter()
            .next()
            .map(Invitation)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("the invitation vanished")).into())
    }

    /// Accepts an invitation addressed to you: you become a member of its
    /// tenant with its role and school (your default tenant if you have
    /// none). Switch to it with `switchTenant`. Returns the membership.
    async fn accept_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<Membership> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let joined = crate::unit_of_work::write(state, async |txn| {
            let account = service::account_of(txn, viewer.user_id).await?;
            service::accept(txn, state.clock.now(), &account, id).await
        })
        .await?;
        Ok(Membership(joined))
    }

    /// Declines an invitation addressed to you. Returns its id.
    async fn decline_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        let declined = crate::unit_of_work::write(state, async |txn| {
            let account = service::account_of(txn, viewer.user_id).await?;
            Ok(Outcome::quiet(
                service::decline(txn, state.clock.now(), &account, id).await?,
            ))
        })
        .await?;
        Ok(declined)
    }

    /// Revokes an invitation of the active tenant. Tenant admins. Returns its id.
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<Uuid> {
        let scope = ctx.scope()?;
        let state = ctx.state()?;
        let revoked = crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                service::revoke(txn, state.clock.now(), &scope, id).await?,
            ))
        })
        .await?;
        Ok(revoked)
    }

    /// Lifts the login lockout of an e-mail address and forgets its failed
    /// attempts. A tenant admin: addresses of members of the active tenant;
    /// a super admin: any address. Answers `true` whether or not the address
    /// was locked (and, for a super admin, whether or not it has an
    /// account). Audited.
    async fn unlock_login(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                unlock::unlock_email(txn, state.clock.now(), viewer, &email).await?,
            ))
        })
        .await?;
        Ok(true)
    }

    /// Lifts the slow-down of a client address (as the server sees it: the
    /// peer, or the forwarded address when trusted) and forgets its failed
    /// attempts. Super admins. Audited.
    async fn unlock_login_address(&self, ctx: &Context<'_>, address: String) -> Result<bool> {
        let viewer = ctx.viewer()?;
        let state = ctx.state()?;
        crate::unit_of_work::write(state, async |txn| {
            Ok(Outcome::quiet(
                unlock::unlock_address(txn, state.clock.now(), viewer, &address).await?,
            ))
        })
        .await?;
        Ok(true)
    }
}
