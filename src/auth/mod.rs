//! Who is asking: token and service-credential checks, and the request's
//! [`Identity`].

pub mod tokens;

use std::sync::Arc;

use entity::tenant_membership::MembershipRole;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::config::{AuthSettings, ServiceGrant};
pub use tokens::{Claims, TokenKeys};

/// The credentials a WebSocket connection was initialised with. Every
/// operation is authenticated again with them, and the connection watches
/// its identity (see `services::live_identity`), so that a logout,
/// revocation, expiry or change of role takes effect on open connections.
#[derive(Debug, Clone, Default)]
pub struct ConnectionCredentials(pub Option<String>);

/// The identity a request runs as.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No credentials were sent.
    Anonymous,
    /// Credentials were sent but refused; the text says why.
    Rejected(String),
    /// The login session the token is bound to has ended, for this reason.
    Ended(entity::session_log::SessionEndReason),
    /// A valid login whose user has lost access to every tenant; the text says why.
    NoAccess(String),
    /// A logged-in person, in their active tenant.
    User(Arc<UserIdentity>),
    /// Another service (lock manager, notification service).
    Service(ServiceIdentity),
}

/// A logged-in person and their tenant context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The user.
    pub user_id: Uuid,
    /// The login session (a `session_logs` row) the token is bound to.
    pub login_session_id: Uuid,
    /// The active tenant; `None` only for a super admin who has not chosen one.
    pub tenant_id: Option<Uuid>,
    /// The user's role in the active tenant, if a member.
    pub role: Option<MembershipRole>,
    /// Whether the user administers the whole system.
    pub is_super_admin: bool,
    /// The account, as authentication read it (from the identity cache).
    pub account: Arc<entity::user::Model>,
    /// The login session as of this request (its `last_seen_at` counts
    /// this request when it is a user action).
    pub login_session: Arc<entity::session_log::Model>,
    /// Every membership of the user.
    pub memberships: Arc<Vec<entity::tenant_membership::Model>>,
}

/// Another service, known by its configured credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// The configured name.
    pub name: String,
    /// What its configuration grants it.
    pub grants: Vec<ServiceGrant>,
}

impl ServiceIdentity {
    /// `FORBIDDEN` unless the service was granted `grant`.
    pub(crate) fn require(&self, grant: ServiceGrant) -> Result<(), crate::error::AppError> {
        if self.grants.contains(&grant) {
            Ok(())
        } else {
            Err(crate::error::AppError::forbidden(format!(
                "the service credential `{}` is not granted `{}` (auth.services.grants)",
                self.name,
                grant.name()
            )))
        }
    }
}

/// The configured service credentials, stored as digests and compared in
/// constant time.
#[derive(Debug, Default)]
pub struct ServiceCredentials {
    digests: Vec<(ServiceIdentity, [u8; 32])>,
}

impl ServiceCredentials {
    /// From the configuration.
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            digests: settings
                .services
                .iter()
                .map(|service| {
                    let identity = ServiceIdentity {
                        name: service.name.clone(),
                        grants: service.grants.clone(),
                    };
                    (identity, digest(service.token.expose_secret()))
                })
                .collect(),
        }
    }

    /// The service a bearer token belongs to, if any.
    pub(crate) fn identify(&self, bearer: &str) -> Option<ServiceIdentity> {
        let presented = digest(bearer);
        self.digests
            .iter()
            .find(|(_, expected)| bool::from(expected.ct_eq(&presented)))
            .map(|(identity, _)| identity.clone())
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The bearer token of an `Authorization` header value (`Bearer <token>`,
/// scheme case-insensitive).
pub(crate) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::ServiceCredential;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn service_tokens_identify_their_service_only() {
        let settings = AuthSettings {
            services: vec![ServiceCredential {
                name: "lock-manager".to_owned(),
                token: SecretString::from("l".repeat(40)),
                grants: vec![ServiceGrant::LockState],
            }],
            ..Default::default()
        };
        let credentials = ServiceCredentials::new(&settings);
        assert_eq!(
            credentials.identify(&"l".repeat(40)).map(|service| service.name),
            Some("lock-manager".to_owned())
        );
        assert_eq!(credentials.identify(&"l".repeat(39)), None);
    }
}
