//! Domain logic over a connection or a transaction. No GraphQL types here.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod content;
pub mod identity;
pub mod invitations;
pub mod live_identity;
pub mod lock_state;
pub mod login_policy;
pub mod login_sessions;
pub mod passwords;
pub mod scope;
pub mod sessions;
pub mod settings;
pub mod super_admins;
pub mod tenancy;
pub mod tenant_context;
pub mod throttle;
pub mod unlock;
pub mod validation;
pub mod webhooks;
