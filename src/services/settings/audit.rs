//! The audit trail of settings changes (document 003's formats) and the
//! audit-log listing.

use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::resolution::{Level, Property, SettingValue, display_value};
use crate::error::AppResult;

/// The audit actions of settings changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// `UpdateSystemSessionSettings`.
    UpdateSystemSessionSettings,
    /// `UpdateDistrictSessionSettings`.
    UpdateDistrictSessionSettings,
    /// `UpdateSchoolSessionSettings`.
    UpdateSchoolSessionSettings,
    /// `UpdateUserSessionSettings`: the per-user override (not named by the
    /// settings document, which has no user level in its audit table).
    UpdateUserSessionSettings,
    /// `ResetSessionSettingsToDefault`, at any level.
    ResetSessionSettingsToDefault,
}

impl AuditAction {
    /// The stored action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateSystemSessionSettings => "UpdateSystemSessionSettings",
            Self::UpdateDistrictSessionSettings => "UpdateDistrictSessionSettings",
            Self::UpdateSchoolSessionSettings => "UpdateSchoolSessionSettings",
            Self::UpdateUserSessionSettings => "UpdateUserSessionSettings",
            Self::ResetSessionSettingsToDefault => "ResetSessionSettingsToDefault",
        }
    }

    /// The update action of `level`.
    pub(crate) fn update_of(level: Level) -> Self {
        match level {
            Level::School => Self::UpdateSchoolSessionSettings,
            Level::District => Self::UpdateDistrictSessionSettings,
            Level::User => Self::UpdateUserSessionSettings,
            Level::System | Level::Config | Level::Default => Self::UpdateSystemSessionSettings,
        }
    }
}

/// The resource of a scope: `System`, `District:{id}`, `School:{id}`, `User:{id}`.
pub fn resource(level: Level, id: Option<Uuid>) -> String {
    match id {
        Some(id) => format!("{}:{id}", level.name()),
        None => level.name().to_owned(),
    }
}

/// `{Property}: {OldValue} → {NewValue}`, with `null` for NULL.
pub(crate) fn change_details(
    level: Level,
    property: Property,
    old: Option<SettingValue>,
    new: Option<SettingValue>,
) -> String {
    format!(
        "{}: {} → {}",
        level.property_name(property),
        display_value(old),
        display_value(new)
    )
}

/// `Reset {Property} to inherit from {ParentScope}`.
pub(crate) fn reset_details(level: Level, property: Property, parent: Level) -> String {
    format!(
        "Reset {} to inherit from {}",
        level.property_name(property),
        parent.name()
    )
}

/// One audit row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The tenant concerned (`None` for the system).
    pub tenant_id: Option<Uuid>,
    /// Who did it.
    pub actor_id: Uuid,
    /// What.
    pub action: AuditAction,
    /// On what.
    pub resource: String,
    /// How.
    pub details: String,
}

/// Appends `records` at `now`.
pub async fn write(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    records: Vec<AuditRecord>,
) -> AppResult<()> {
    for record in records {
        audit_log::ActiveModel {
            tenant_id: Set(record.tenant_id),
            actor_id: Set(Some(record.actor_id)),
            action: Set(record.action.as_str().to_owned()),
            resource: Set(record.resource),
            details: Set(record.details),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Which audit rows a viewer may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVisibility {
    /// Every row (super admins), system rows included.
    All,
    /// The rows of these tenants (the tenants the viewer administers).
    Tenants(Vec<Uuid>),
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this action.
    pub action: Option<String>,
    /// Exactly this resource, e.g. `District:{id}`.
    pub resource: Option<String>,
    /// Done by this user.
    pub actor_id: Option<Uuid>,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// One page of audit rows, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The rows.
    pub rows: Vec<audit_log::Model>,
    /// Whether more rows follow.
    pub has_next_page: bool,
}

/// A page of the audit rows `visibility` allows and `filter` selects,
/// newest first (ties by id, newest first), after the cursor `after`.
pub async fn page(
    db: &impl ConnectionTrait,
    visibility: &AuditVisibility,
    filter: &AuditFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> AppResult<AuditPage> {
    let mut condition = Condition::all();
    if let AuditVisibility::Tenants(tenants) = visibility {
        condition = condition.add(audit_log::Column::TenantId.is_in(tenants.iter().copied()));
    }
    if let Some(action) = &filter.action {
        condition = condition.add(audit_log::Column::Action.eq(action.as_str()));
    }
    if let Some(resource) = &filter.resource {
        condition = condition.add(audit_log::Column::Resource.eq(resource.as_str()));
    }
    if let Some(actor_id) = filter.actor_id {
        condition = condition.add(audit_log::Column::ActorId.eq(actor_id));
    }
    if let Some(from) = filter.from {
        condition = condition.add(audit_log::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(audit_log::Column::CreatedAt.lt(to));
    }
    if let Some((created_at, id)) = after {
        condition = condition.add(
            Condition::any()
                .add(audit_log::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(audit_log::Column::CreatedAt.eq(created_at))
                        .add(audit_log::Column::Id.lt(id)),
                ),
        );
    }
    let mut rows = audit_log::Entity::find()
        .filter(condition)
        .order_by_desc(audit_log::Column::CreatedAt)
        .order_by_desc(audit_log::Column::Id)
        .limit(limit.saturating_add(1))
        .all(db)
        .await?;
    let has_next_page = u64::try_from(rows.len()).unwrap_or(u64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(AuditPage { rows, has_next_page })
}
