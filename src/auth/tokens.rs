//! Signed login tokens (JWT, HS256), bound to one login session.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

const ISSUER: &str = "session-manager";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The login session.
    pub sid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Always `session-manager`.
    pub iss: String,
}

/// The keys that sign and check tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys from the configured secret, or from a random one when none is set.
    pub fn new(secret: Option<&SecretString>) -> Self {
        let secret = secret.map_or_else(
            || {
                tracing::warn!(
                    "auth.token_secret is not set: using a random key, so tokens end with this process \
                     and other instances will not accept them"
                );
                SecretString::from(format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()))
            },
            Clone::clone,
        );
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }

    /// Signs a token for `login_session_id` of `user_id`, valid until `expires_at`.
    pub fn issue(
        &self,
        user_id: Uuid,
        login_session_id: Uuid,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<String> {
        let claims = Claims {
            sub: user_id,
            sid: login_session_id,
            iat: issued_at.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_owned(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| AppError::internal(anyhow::anyhow!("token signing failed: {error}")))
    }

    /// Checks the signature and issuer, and the expiry against `now` (the
    /// application's clock, not the wall clock). Requests check `exp`
    /// themselves, after the login session (see `services::auth`).
    #[cfg(test)]
    pub(crate) fn verify(&self, token: &str, now: DateTime<Utc>) -> AppResult<Claims> {
        let claims = self.verify_signature(token)?;
        if claims.exp <= now.timestamp() {
            return Err(AppError::Unauthenticated(
                "the token has expired: log in again".to_owned(),
            ));
        }
        Ok(claims)
    }

    /// Checks the signature and issuer only: the caller checks `exp`.
    pub(crate) fn verify_signature(&self, token: &str) -> AppResult<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Expiry is checked by the caller against the application's clock.
        validation.validate_exp = false;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AppError::Unauthenticated("the token is not valid: log in again".to_owned()))?
            .claims;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_token_verifies_until_it_expires() {
        let keys = TokenKeys::new(Some(&SecretString::from("k".repeat(32))));
        let now = Utc::now();
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = keys
            .issue(user, session, now, now + Duration::minutes(5))
            .unwrap_or_default();
        let claims = keys.verify(&token, now).ok();
        assert_eq!(
            claims.as_ref().map(|claims| (claims.sub, claims.sid)),
            Some((user, session))
        );
        assert!(keys.verify(&token, now + Duration::minutes(5)).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let now = Utc::now();
        let other = TokenKeys::new(Some(&SecretString::from("o".repeat(32))));
        let token = other
            .issue(Uuid::now_v7(), Uuid::now_v7(), now, now + Duration::minutes(5))
            .unwrap_or_default();
        let keys = TokenKeys::new(Some(&SecretString::from("k".repeat(32))));
        assert!(keys.verify(&token, now).is_err());
        assert!(keys.verify("garbage", now).is_err());
    }
}
