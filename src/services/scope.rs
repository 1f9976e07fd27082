//! Row-level security in one place: the [`Scope`] a request may see and
//! change, built from its identity, and the filters it puts on every query.
//!
//! A user sees their own rows; a guardian also the sessions of the users they
//! supervise; a tenant admin everything of their tenant; a super admin
//! everything of the tenant they are working in. Always inside the active
//! tenant. Anything else is denied: anonymous requests are `UNAUTHENTICATED`,
//! services get only the session-state queries, and rows out of scope read as
//! not found.

use entity::tenant_membership::MembershipRole;
use entity::{
    guardian_link, module, school, session, session_context_change, session_log, tenant_membership, user,
};
use sea_orm::sea_query::{Condition, Expr, ExprTrait as _, Query, SelectStatement};
use sea_orm::{ColumnTrait, EntityName, QueryFilter};
use uuid::Uuid;

use crate::auth::{Identity, UserIdentity};
use crate::error::{AppError, AppResult};

/// How much of the active tenant the viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// Everything of the tenant (tenant admin, super admin).
    Tenant,
    /// Their own rows and those of the users they supervise (guardian).
    Supervised,
    /// Their own rows only.
    Own,
}

/// What one request may see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The active tenant.
    pub tenant_id: Uuid,
    /// The viewer.
    pub user_id: Uuid,
    /// How far the viewer reaches in the tenant.
    pub reach: Reach,
    /// Whether the viewer is a super admin (may manage every tenant).
    pub is_super_admin: bool,
}

impl Scope {
    /// The scope of `identity`; denies by default.
    pub fn of(identity: &Identity) -> AppResult<Self> {
        match identity {
            Identity::Anonymous => Err(AppError::login_required()),
            Identity::Rejected(reason) => Err(AppError::Unauthenticated(reason.clone())),
            Identity::Ended(reason) => Err(AppError::LoginSessionEnded(*reason)),
            Identity::NoAccess(reason) => Err(AppError::Forbidden(reason.clone())),
            Identity::Service(_) => Err(AppError::forbidden(
                "a service credential may only use what it is granted: lockState, lockStateChanged, isSessionActive and activeSession (`lock_state`), notifications (`notifications`)",
            )),
            Identity::User(viewer) => Self::of_user(viewer),
        }
    }

    /// The scope of a logged-in user.
    pub fn of_user(viewer: &UserIdentity) -> AppResult<Self> {
        let Some(tenant_id) = viewer.tenant_id else {
            return Err(AppError::forbidden(
                "no active tenant: choose one with switchTenant",
            ));
        };
        let reach = if viewer.is_super_admin {
            Reach::Tenant
        } else {
            match viewer.role {
                Some(MembershipRole::Admin) => Reach::Tenant,
                Some(MembershipRole::Guardian) => Reach::Supervised,
                Some(MembershipRole::Member) => Reach::Own,
                None => return Err(AppError::forbidden("you are not a member of the active tenant")),
            }
        };
        Ok(Self {
            tenant_id,
            user_id: viewer.user_id,
            reach,
            is_super_admin: viewer.is_super_admin,
        })
    }

    /// Whether the viewer administers the active tenant.
    pub(crate) fn is_tenant_admin(&self) -> bool {
        self.reach == Reach::Tenant
    }

    /// Fails with `FORBIDDEN` unless the viewer administers the active tenant.
    pub(crate) fn require_tenant_admin(&self) -> AppResult<()> {
        if self.is_tenant_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only an administrator of the tenant may do this",
            ))
        }
    }

    /// Whether the viewer may change a session in scope (beyond ending it):
    /// a supervised user may end a session their guardian started (that is
    /// the unlock the guardian is told about) but not rewrite it.
    pub(crate) fn require_may_change_session(&self, guardian_id: Option<Uuid>) -> AppResult<()> {
        if self.reach == Reach::Own && guardian_id.is_some_and(|guardian| guardian != self.user_id) {
            return Err(AppError::forbidden(
                "a session started by a guardian can only be changed by them or an administrator; end it with endSession",
            ));
        }
        Ok(())
    }

    /// The users the viewer supervises in the active tenant (a subquery).
    fn supervised_users(&self) -> SelectStatement {
        Query::select()
            .column(guardian_link::Column::UserId)
            .from(guardian_link::Entity.table_ref())
            .and_where(guardian_link::Column::TenantId.eq(self.tenant_id))
            .and_where(guardian_link::Column::GuardianId.eq(self.user_id))
            .to_owned()
    }

    /// The members of the active tenant (a subquery).
    fn tenant_members(&self) -> SelectStatement {
        Query::select()
            .column(tenant_membership::Column::UserId)
            .from(tenant_membership::Entity.table_ref())
            .and_where(tenant_membership::Column::TenantId.eq(self.tenant_id))
            .to_owned()
    }

    /// Guardian–user sessions the viewer may see and manage.
    pub fn sessions(&self) -> Condition {
        let tenant = Condition::all().add(session::Column::TenantId.eq(self.tenant_id));
        match self.reach {
            Reach::Tenant => tenant,
            Reach::Supervised => tenant.add(
                Condition::any()
                    .add(session::Column::UserId.eq(self.user_id))
                    .add(session::Column::GuardianId.eq(self.user_id))
                    .add(session::Column::UserId.in_subquery(self.supervised_users())),
            ),
            Reach::Own => tenant.add(session::Column::UserId.eq(self.user_id)),
        }
    }

    /// The ids of the sessions in scope (a subquery), for tables below sessions.
    pub(crate) fn session_ids(&self) -> SelectStatement {
        Query::select()
            .column(session::Column::Id)
            .from(session::Entity.table_ref())
            .cond_where(self.sessions())
            .to_owned()
    }

    /// The ids among `ids` of sessions in scope (a subquery). Narrowed by id
    /// first: the database then looks up each of those few sessions instead
    /// of listing every session in scope.
    pub(crate) fn session_ids_among(&self, ids: impl IntoIterator<Item = Uuid>) -> SelectStatement {
        let mut among = self.session_ids();
        among.and_where(session::Column::Id.is_in(ids));
        among
    }

    /// The ids among `ids` of modules of sessions in scope (a subquery): each
    /// module looked up by id, and its session by the module's.
    pub(crate) fn module_ids_among(&self, ids: impl IntoIterator<Item = Uuid>) -> SelectStatement {
        Query::select()
            .column((module::Entity, module::Column::Id))
            .from(module::Entity)
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::Id))
                    .equals((module::Entity, module::Column::SessionId)),
            )
            .and_where(module::Column::Id.is_in(ids))
            .cond_where(self.sessions())
            .to_owned()
    }

    /// Users the viewer may see: members of the tenant for an admin; the
    /// guardian and the users they supervise; otherwise themselves.
    pub fn users(&self) -> Condition {
        match self.reach {
            Reach::Tenant => Condition::all().add(user::Column::Id.in_subquery(self.tenant_members())),
            Reach::Supervised => Condition::any()
                .add(user::Column::Id.eq(self.user_id))
                .add(user::Column::Id.in_subquery(self.supervised_users())),
            Reach::Own => Condition::all().add(user::Column::Id.eq(self.user_id)),
        }
    }

    /// Guardian links the viewer may see: an admin, every link of the tenant;
    /// a guardian, those in which they are the guardian or the supervised
    /// user; a member, those in which they are the supervised user.
    pub(crate) fn guardian_links(&self) -> Condition {
        let tenant = Condition::all().add(guardian_link::Column::TenantId.eq(self.tenant_id));
        match self.reach {
            Reach::Tenant => tenant,
            Reach::Supervised => tenant.add(
                Condition::any()
                    .add(guardian_link::Column::GuardianId.eq(self.user_id))
                    .add(guardian_link::Column::UserId.eq(self.user_id)),
            ),
            Reach::Own => tenant.add(guardian_link::Column::UserId.eq(self.user_id)),
        }
    }

    /// The schools of the active tenant (what its administrators manage).
    pub fn schools(&self) -> Condition {
        Condition::all().add(school::Column::TenantId.eq(self.tenant_id))
    }

    /// The memberships of the active tenant (what its administrators manage).
    pub fn memberships(&self) -> Condition {
        Condition::all().add(tenant_membership::Column::TenantId.eq(self.tenant_id))
    }

    /// Whether a session with these participants is in scope: the check a
    /// subscription makes for every event before delivering it.
    /// `supervises` answers whether the viewer supervises the session's
    /// user in the active tenant (asked only of a guardian).
    pub(crate) async fn sees_session(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        guardian_id: Option<Uuid>,
        supervises: impl AsyncFnOnce() -> AppResult<bool>,
    ) -> AppResult<bool> {
        if tenant_id != self.tenant_id {
            return Ok(false);
        }
        Ok(match self.reach {
            Reach::Tenant => true,
            Reach::Own => user_id == self.user_id,
            Reach::Supervised => {
                user_id == self.user_id || guardian_id == Some(self.user_id) || supervises().await?
            }
        })
    }

    /// Users that may appear as participants of visible rows: any member of
    /// the active tenant, and the viewer; every user for a super admin.
    /// Loaders use it so a nested lookup can never cross tenants.
    pub(crate) fn tenant_users(&self) -> Condition {
        if self.is_super_admin {
            return Condition::all();
        }
        Condition::any()
            .add(user::Column::Id.eq(self.user_id))
            .add(user::Column::Id.in_subquery(self.tenant_members()))
    }

    /// Users the viewer may see as part of rows in scope: members of the
    /// tenant (see [`Scope::tenant_users`]), and the user and guardian of
    /// any session in scope, even after they left the tenant.
    pub(crate) fn visible_people(&self) -> Condition {
        let participants = |column: session::Column| {
            Query::select()
                .column(column)
                .from(session::Entity.table_ref())
                .cond_where(self.sessions())
                .to_owned()
        };
        Condition::any()
            .add(self.tenant_users())
            .add(user::Column::Id.in_subquery(participants(session::Column::UserId)))
            .add(user::Column::Id.in_subquery(participants(session::Column::GuardianId)))
    }

    /// Login sessions the viewer may see and revoke: an admin, those of the
    /// tenant's members working in the tenant (a super admin's only for
    /// another super admin); everyone, their own.
    pub fn login_sessions(&self) -> Condition {
        match self.reach {
            Reach::Tenant => {
                // Only the members' login sessions working in this tenant,
                // and never a super admin's unless the viewer is one.
                let mut members = Condition::all()
                    .add(session_log::Column::TenantId.eq(self.tenant_id))
                    .add(session_log::Column::UserId.in_subquery(self.tenant_members()));
                if !self.is_super_admin {
                    members = members.add(
                        session_log::Column::UserId.not_in_subquery(
                            Query::select()
                                .column(user::Column::Id)
                                .from(user::Entity.table_ref())
                                .and_where(user::Column::IsSuperAdmin.eq(true))
                                .to_owned(),
                        ),
                    );
                }
                Condition::any()
                    .add(session_log::Column::UserId.eq(self.user_id))
                    .add(members)
            }
            Reach::Supervised | Reach::Own => {
                Condition::all().add(session_log::Column::UserId.eq(self.user_id))
            }
        }
    }

    /// Tenant-context changes the viewer may read: an admin, the tenant's;
    /// everyone, their own.
    pub(crate) fn context_changes(&self) -> Condition {
        match self.reach {
            Reach::Tenant => Condition::any()
                .add(session_context_change::Column::UserId.eq(self.user_id))
                .add(session_context_change::Column::TenantId.eq(self.tenant_id)),
            Reach::Supervised | Reach::Own => {
                Condition::all().add(session_context_change::Column::UserId.eq(self.user_id))
            }
        }
    }
}

/// Whether `guardian_id` supervises `user_id` in `tenant_id` (a guardian link).
pub async fn supervises(
    db: &impl sea_orm::ConnectionTrait,
    tenant_id: Uuid,
    guardian_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    Ok(<guardian_link::Entity as sea_orm::EntityTrait>::find()
        .filter(guardian_link::Column::TenantId.eq(tenant_id))
        .filter(guardian_link::Column::GuardianId.eq(guardian_id))
        .filter(guardian_link::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::ServiceIdentity;

    fn viewer(role: Option<MembershipRole>, is_super_admin: bool, tenant: Option<Uuid>) -> Identity {
        let (user_id, login_session_id, now) = (Uuid::now_v7(), Uuid::now_v7(), chrono::Utc::now());
        let account = user::Model {
            id: user_id,
            email: "someone@example.test".to_owned(),
            name: None,
            password_hash: String::new(),
            is_super_admin,
            max_concurrent_sessions: None,
            created_at: now,
            updated_at: now,
        };
        let login_session = session_log::Model {
            id: login_session_id,
            user_id,
            tenant_id: tenant,
            login_at: now,
            logout_at: None,
            last_seen_at: now,
            user_agent: None,
            ip_address: None,
            device_info: None,
            end_reason: None,
            expiry_warned_for: None,
            created_at: now,
            updated_at: now,
        };
        Identity::User(Arc::new(UserIdentity {
            user_id,
            login_session_id,
            tenant_id: tenant,
            role,
            is_super_admin,
            account: Arc::new(account),
            login_session: Arc::new(login_session),
            memberships: Arc::default(),
        }))
    }

    #[test]
    fn everything_is_denied_by_default() {
        let tenant = Some(Uuid::now_v7());
        assert!(matches!(
            Scope::of(&Identity::Anonymous),
            Err(AppError::Unauthenticated(_))
        ));
        assert!(matches!(
            Scope::of(&Identity::Service(ServiceIdentity {
                name: "lock".to_owned(),
                grants: vec![crate::config::ServiceGrant::LockState],
            })),
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            Scope::of(&viewer(None, false, tenant)),
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            Scope::of(&viewer(Some(MembershipRole::Admin), false, None)),
            Err(AppError::Forbidden(_))
        ));
    }

    #[test]
    fn roles_map_to_reach() {
        let tenant = Some(Uuid::now_v7());
        let reach = |role, is_super_admin| {
            Scope::of(&viewer(role, is_super_admin, tenant))
                .map(|scope| scope.reach)
                .ok()
        };
        assert_eq!(reach(Some(MembershipRole::Member), false), Some(Reach::Own));
        assert_eq!(
            reach(Some(MembershipRole::Guardian), false),
            Some(Reach::Supervised)
        );
        assert_eq!(reach(Some(MembershipRole::Admin), false), Some(Reach::Tenant));
        assert_eq!(reach(None, true), Some(Reach::Tenant));
    }
}
