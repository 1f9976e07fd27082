//! `login_throttles`: failed password checks per e-mail and per client
//! address, shared by every instance.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The failures counted under one key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "login_throttles")]
pub struct Model {
    /// `email:<sha256>` or `address:<sha256>` of the normalised value.
    #[sea_orm(primary_key, auto_increment = false, column_type = "String(StringLen::N(80))")]
    pub key: String,
    /// Failed (or still unanswered) password checks in the current window.
    pub failures: i32,
    /// The latest counted check; the window runs from it.
    pub last_failure_at: DateTimeUtc,
    /// No password is checked under this key before this instant.
    pub locked_until: Option<DateTimeUtc>,
    /// Last modification time.
    pub updated_at: DateTimeUtc,
}

/// Relations of [`Model`]: none.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

active_model_behavior!(updated: updated_at,);
