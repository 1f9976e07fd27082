//! `invitations`: open invitations of an e-mail address into a tenant.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tenant_membership::MembershipRole;

/// An invitation, open until `expires_at`. Answered invitations are deleted;
/// `(tenant_id, email)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant the invitee would join.
    pub tenant_id: Uuid,
    /// The invited address, normalised (trimmed, lower-case).
    #[sea_orm(column_type = "String(StringLen::N(320))")]
    pub email: String,
    /// The account that had the address when the invitation was sent: the
    /// only one that may answer it (`ON DELETE CASCADE`). `None`: the
    /// address had no account, and nobody can accept.
    pub invitee_id: Option<Uuid>,
    /// The role the invitee would have.
    pub role: MembershipRole,
    /// The school the invitee would have in the tenant (`ON DELETE SET NULL`).
    pub school_id: Option<Uuid>,
    /// The administrator who invited (`ON DELETE SET NULL`).
    pub invited_by_id: Option<Uuid>,
    /// When the invitation stops being valid.
    pub expires_at: DateTimeUtc,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last modification time (an invitation sent again is refreshed).
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The tenant.
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    /// The school.
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolId",
        to = "super::school::Column::Id",
        on_delete = "SetNull"
    )]
    School,
    /// Who invited.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::InvitedById",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    InvitedBy,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

active_model_behavior!(id: id, created: created_at, updated: updated_at,);
