//! Session configs: label, lock profile, unlock notification.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::session_config;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde_json::json;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::events::{Event, SessionChange};

/// Most app ids in a lock list.
pub const MAX_APPS: usize = 200;
/// Longest app id, in characters.
const MAX_APP_ID: usize = 100;
/// Longest label, in characters.
const MAX_LABEL: usize = 255;
/// Longest custom message, in characters.
const MAX_MESSAGE: usize = 1000;

/// Apps to lock and to allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockProfileInput {
    /// App ids blocked during the session.
    pub locked_apps: Vec<String>,
    /// App ids always allowed.
    pub whitelist: Vec<String>,
}

/// A config to set; `None` leaves a value as it is (or at its default for a
/// new config).
#[derive(Debug, Clone, Default)]
pub struct ConfigInput {
    /// Short label; an empty string clears it.
    pub label: Option<String>,
    /// Lock profile.
    pub lock_profile: Option<LockProfileInput>,
    /// Tell the guardian when the session is unlocked early.
    pub notify_on_unlock: Option<bool>,
    /// Message for that notification; an empty string clears it.
    pub custom_message: Option<String>,
}

fn app_id_is_valid(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphanumeric())
        && id.len() <= MAX_APP_ID
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks a lock profile: lists of app ids (letters, digits, `.`, `_`, `-`;
/// at most 100 characters; at most 200 per list), no duplicates, no app both
/// locked and whitelisted. Returns it normalised (trimmed, lower-case).
pub fn validate_lock_profile(profile: LockProfileInput) -> AppResult<LockProfileInput> {
    let normalise = |field: &str, apps: Vec<String>| -> AppResult<Vec<String>> {
        if apps.len() > MAX_APPS {
            return Err(AppError::bad_input(
                field,
                format!("at most {MAX_APPS} apps (got {})", apps.len()),
            ));
        }
        let mut seen = HashSet::new();
        let mut normalised = Vec::with_capacity(apps.len());
        for app in apps {
            let app = app.trim().to_lowercase();
            if !app_id_is_valid(&app) {
                return Err(AppError::bad_input(
                    field,
                    format!(
                        "`{app}` is not an app id: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most {MAX_APP_ID} characters"
                    ),
                ));
            }
            if !seen.insert(app.clone()) {
                return Err(AppError::bad_input(field, format!("`{app}` is listed twice")));
            }
            normalised.push(app);
        }
        Ok(normalised)
    };
    let locked_apps = normalise("lockProfile.lockedApps", profile.locked_apps)?;
    let whitelist = normalise("lockProfile.whitelist", profile.whitelist)?;
    if let Some(both) = locked_apps.iter().find(|app| whitelist.contains(app)) {
        return Err(AppError::bad_input(
            "lockProfile",
            format!("`{both}` cannot be both locked and whitelisted"),
        ));
    }
    Ok(LockProfileInput {
        locked_apps,
        whitelist,
    })
}

fn optional_text(field: &str, value: &str, max: usize) -> AppResult<Option<String>> {
    let value = value.trim().to_owned();
    let length = value.chars().count();
    if length > max {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {max} characters (got {length})"),
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

/// Sets the config of an active session in `scope` that the viewer may
/// change; returns the session and its `CONFIG_CHANGED` event.
pub async fn configure_session(
    db: &impl ConnectionTrait,
    scope: &crate::services::scope::Scope,
    session_id: Uuid,
    input: ConfigInput,
    now: DateTime<Utc>,
) -> AppResult<(entity::session::Model, Vec<Event>)> {
    let row = super::find_changeable(db, scope, session_id, now).await?;
    scope.require_may_change_session(row.guardian_id)?;
    set_config(db, row.id, input, now).await?;
    let event = super::lifecycle::event(SessionChange::ConfigChanged, &row, now);
    Ok((row, vec![event]))
}

/// Creates or changes the config of session `session_id` (which the caller
/// has already found in scope and checked to be changeable).
pub async fn set_config(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    input: ConfigInput,
    now: DateTime<Utc>,
) -> AppResult<session_config::Model> {
    let label = input
        .label
        .map(|label| optional_text("label", &label, MAX_LABEL))
        .transpose()?;
    let message = input
        .custom_message
        .map(|message| optional_text("customMessage", &message, MAX_MESSAGE))
        .transpose()?;
    let profile = input.lock_profile.map(validate_lock_profile).transpose()?;
    let existing = session_config::Entity::find_by_id(session_id).one(db).await?;
    let is_new = existing.is_none();
    let mut model: session_config::ActiveModel = match existing {
        Some(existing) => existing.into(),
        None => session_config::ActiveModel {
            session_id: Set(session_id),
            notify_on_unlock: Set(true),
            created_at: Set(now),
            ..Default::default()
        },
    };
    if let Some(label) = label {
        model.label = Set(label);
    }
    if let Some(message) = message {
        model.custom_message = Set(message);
    }
    if let Some(profile) = profile {
        model.lock_profile = Set(Some(json!({
            "lockedApps": profile.locked_apps,
            "whitelist": profile.whitelist,
        })));
    }
    if let Some(notify) = input.notify_on_unlock {
        model.notify_on_unlock = Set(notify);
    }
    model.updated_at = Set(now);
    Ok(if is_new {
        model.insert(db).await?
    } else {
        model.update(db).await?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(locked: &[&str], whitelist: &[&str]) -> LockProfileInput {
        LockProfileInput {
            locked_apps: locked.iter().map(|s| (*s).to_owned()).collect(),
            whitelist: whitelist.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn field_of(result: AppResult<LockProfileInput>) -> Option<String> {
        match result {
            Err(AppError::BadUserInput { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn lock_profiles_are_normalised() {
        let valid = validate_lock_profile(profile(&[" TikTok ", "com.youtube"], &["duolingo"])).ok();
        assert_eq!(valid, Some(profile(&["tiktok", "com.youtube"], &["duolingo"])));
    }

    #[test]
    fn an_app_both_locked_and_whitelisted_is_rejected() {
        assert_eq!(
            field_of(validate_lock_profile(profile(&["tiktok"], &["TIKTOK"]))),
            Some("lockProfile".to_owned())
        );
    }

    #[test]
    fn malformed_duplicate_and_too_many_apps_are_rejected() {
        assert_eq!(
            field_of(validate_lock_profile(profile(&["bad app"], &[]))),
            Some("lockProfile.lockedApps".to_owned())
        );
        assert_eq!(
            field_of(validate_lock_profile(profile(&[], &["a", "a"]))),
            Some("lockProfile.whitelist".to_owned())
        );
        let many: Vec<String> = (0..=MAX_APPS).map(|i| format!("app{i}")).collect();
        let too_many = LockProfileInput {
            locked_apps: many,
            whitelist: Vec::new(),
        };
        assert_eq!(
            field_of(validate_lock_profile(too_many)),
            Some("lockProfile.lockedApps".to_owned())
        );
        let max: Vec<String> = (0..MAX_APPS).map(|i| format!("app{i}")).collect();
        assert!(
            validate_lock_profile(LockProfileInput {
                locked_apps: max,
                whitelist: Vec::new()
            })
            .is_ok()
        );
        assert!(field_of(validate_lock_profile(profile(&[&"a".repeat(101)], &[]))).is_some());
        assert!(validate_lock_profile(profile(&[&"a".repeat(100)], &[])).is_ok());
    }
}
