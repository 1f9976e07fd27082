//! Domain logic over a connection or a transaction. No GraphQL types here.

pub mod passwords;
pub mod sessions;
pub mod tenancy;
pub mod validation;
