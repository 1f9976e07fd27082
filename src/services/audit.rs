//! Audit records of account actions: invitations, deletions, lockouts and
//! super-admin changes (settings changes have their own formats, in
//! `settings::audit`). The rows outlive what they mention: ids are kept in
//! `resource` and `details` as data.

use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use uuid::Uuid;

use crate::error::AppResult;

/// The account actions written to `audit_logs.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// An administrator invited an address into a tenant.
    InviteMember,
    /// The invitee accepted.
    AcceptInvitation,
    /// The invitee declined.
    DeclineInvitation,
    /// An administrator revoked an open invitation.
    RevokeInvitation,
    /// A super admin deleted a tenant.
    DeleteTenant,
    /// A super admin deleted an account.
    DeleteUser,
    /// Failed password checks locked an e-mail address or slowed a client address.
    LoginLockout,
    /// An administrator lifted a lockout.
    UnlockLogin,
    /// The command line created a super admin.
    CreateSuperAdmin,
    /// The command line made an account a super admin.
    PromoteSuperAdmin,
    /// The command line took super-admin rights away.
    DemoteSuperAdmin,
}

impl AccountAction {
    /// The stored action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InviteMember => "InviteMember",
            Self::AcceptInvitation => "AcceptInvitation",
            Self::DeclineInvitation => "DeclineInvitation",
            Self::RevokeInvitation => "RevokeInvitation",
            Self::DeleteTenant => "DeleteTenant",
            Self::DeleteUser => "DeleteUser",
            Self::LoginLockout => "LoginLockout",
            Self::UnlockLogin => "UnlockLogin",
            Self::CreateSuperAdmin => "CreateSuperAdmin",
            Self::PromoteSuperAdmin => "PromoteSuperAdmin",
            Self::DemoteSuperAdmin => "DemoteSuperAdmin",
        }
    }
}

/// One account audit record.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    /// The tenant concerned, if it still exists after the action.
    pub tenant_id: Option<Uuid>,
    /// Who acted; `None` for the system (lockouts) and the command line.
    pub actor_id: Option<Uuid>,
    /// What.
    pub action: AccountAction,
    /// On what, e.g. `User:{id}`.
    pub resource: String,
    /// How, in words.
    pub details: String,
}

/// Appends `record` at `now`.
pub async fn write(db: &impl ConnectionTrait, now: DateTime<Utc>, record: AccountRecord) -> AppResult<()> {
    audit_log::ActiveModel {
        tenant_id: Set(record.tenant_id),
        actor_id: Set(record.actor_id),
        action: Set(record.action.as_str().to_owned()),
        resource: Set(record.resource.chars().take(255).collect()),
        details: Set(record.details),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
