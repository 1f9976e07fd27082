//! Standard Webhooks signatures: `webhook-signature` is `v1,` and the
//! base64 HMAC-SHA256, keyed with the secret's bytes (the base64 after
//! `whsec_`), of `{webhook-id}.{webhook-timestamp}.{body}`; several
//! signatures (one per valid secret, during a rotation) are separated by
//! spaces.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{AppError, AppResult};

/// The prefix of a signing secret.
const PREFIX: &str = "whsec_";

/// A new random signing secret (24 bytes).
pub(crate) fn generate_secret() -> String {
    let mut bytes = [0_u8; 24];
    OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The `v1,` signature of one message with one secret.
pub(crate) fn sign(secret: &str, message_id: &str, timestamp: i64, body: &str) -> AppResult<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .map_err(AppError::internal)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(AppError::internal)?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header value: one signature per secret.
pub(crate) fn signature_header(
    secrets: &[&str],
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> AppResult<String> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, message_id, timestamp, body))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        )
        .ok();
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn every_valid_secret_signs_during_a_rotation() {
        let (old, new) = (generate_secret(), generate_secret());
        assert!(new.starts_with(PREFIX) && new != old);
        let header = signature_header(&[&new, &old], "ev1", 1, "{}").unwrap_or_default();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[1].to_owned()), sign(&old, "ev1", 1, "{}").ok());
    }
}
