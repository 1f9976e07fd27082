//! SeaORM entities of the session-manager data model.
//!
//! One module per table. Every table with timestamps gets an
//! [`ActiveModelBehavior`](sea_orm::ActiveModelBehavior) implementation that
//! maintains them in `before_save`:
//!
//! - a UUID primary key left `NotSet` on insert is filled with
//!   [`Uuid::now_v7`](uuid::Uuid::now_v7);
//! - `created_at` left `NotSet` on insert is filled with the current time;
//! - `updated_at` is set to the current time on every save, unless the caller
//!   explicitly `Set` it.
//!
//! These hooks only run through `ActiveModel::insert` / `update` / `save`, not
//! through `Entity::insert(..)` / `Entity::insert_many(..)` / `update_many`.

use sea_orm::ActiveValue;
use sea_orm::prelude::{DateTimeUtc, Uuid};

/// Fills a UUID primary key with a fresh UUIDv7 on insert when it is `NotSet`.
pub(crate) fn fill_id(id: &mut ActiveValue<Uuid>, insert: bool) {
    if insert && id.is_not_set() {
        *id = ActiveValue::Set(Uuid::now_v7());
    }
}

/// Fills `created_at` with `now` on insert when it is `NotSet`.
pub(crate) fn fill_created_at(created_at: &mut ActiveValue<DateTimeUtc>, insert: bool, now: DateTimeUtc) {
    if insert && created_at.is_not_set() {
        *created_at = ActiveValue::Set(now);
    }
}

/// Sets `updated_at` to `now` unless the caller explicitly `Set` it.
pub(crate) fn touch_updated_at(updated_at: &mut ActiveValue<DateTimeUtc>, now: DateTimeUtc) {
    if !updated_at.is_set() {
        *updated_at = ActiveValue::Set(now);
    }
}

/// Implements `ActiveModelBehavior` for the `ActiveModel` in scope, filling the
/// given fields in `before_save`:
///
/// - `id: <field>`: UUID primary key, generated on insert when `NotSet`;
/// - `created: <field>`: creation timestamp, filled on insert when `NotSet`;
/// - `updated: <field>`: modification timestamp, refreshed unless `Set`.
macro_rules! active_model_behavior {
    ($(id: $id:ident,)? $(created: $created:ident,)? $(updated: $updated:ident,)?) => {
        #[sea_orm::entity::prelude::async_trait::async_trait]
        impl sea_orm::ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, sea_orm::DbErr>
            where
                C: sea_orm::ConnectionTrait,
            {
                let now = chrono::Utc::now();
                let _ = (insert, now);
                $($crate::fill_id(&mut self.$id, insert);)?
                $($crate::fill_created_at(&mut self.$created, insert, now);)?
                $($crate::touch_updated_at(&mut self.$updated, now);)?
                Ok(self)
            }
        }
    };
}

pub mod audit_log;
pub mod event;
pub mod event_log_state;
pub mod guardian_link;
pub mod invitation;
pub mod lock_state;
pub mod login_throttle;
pub mod module;
pub mod school;
pub mod session;
pub mod session_config;
pub mod session_context_change;
pub mod session_log;
pub mod system_settings;
pub mod tenant;
pub mod tenant_membership;
pub mod user;
pub mod video;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;

/// Re-exports of every entity type under its table's singular name.
pub mod prelude {
    pub use crate::audit_log::Entity as AuditLog;
    pub use crate::event::Entity as Event;
    pub use crate::event_log_state::Entity as EventLogState;
    pub use crate::guardian_link::Entity as GuardianLink;
    pub use crate::invitation::Entity as Invitation;
    pub use crate::lock_state::Entity as LockState;
    pub use crate::login_throttle::Entity as LoginThrottle;
    pub use crate::module::Entity as Module;
    pub use crate::school::Entity as School;
    pub use crate::session::Entity as Session;
    pub use crate::session_config::Entity as SessionConfig;
    pub use crate::session_context_change::Entity as SessionContextChange;
    pub use crate::session_log::Entity as SessionLog;
    pub use crate::system_settings::Entity as SystemSettings;
    pub use crate::tenant::Entity as Tenant;
    pub use crate::tenant_membership::Entity as TenantMembership;
    pub use crate::user::Entity as User;
    pub use crate::video::Entity as Video;
    pub use crate::webhook_attempt::Entity as WebhookAttempt;
    pub use crate::webhook_delivery::Entity as WebhookDelivery;
    pub use crate::webhook_endpoint::Entity as WebhookEndpoint;
}
