//! The rules of the settings document: each value in its range, and the
//! cross-field rules on the *effective* settings (idle ≤ absolute, warning
//! below idle).

use super::EffectiveSettings;
use super::resolution::{Property, SettingValue};
use crate::error::{AppError, AppResult};

/// Fails with `BAD_USER_INPUT` on `property`'s input field when `value`
/// is out of the property's range.
pub(crate) fn check_range(property: Property, value: SettingValue) -> AppResult<()> {
    match (property.range(), value) {
        (Some((min, max)), SettingValue::Int(value)) if !(min..=max).contains(&value) => {
            let unit = if matches!(
                property,
                Property::MaxConcurrentSessions | Property::SharedDeviceMaxConcurrentSessions
            ) {
                "sessions"
            } else {
                "minutes"
            };
            Err(AppError::bad_input(
                property.field(),
                format!("must be between {min} and {max} {unit} (got {value})"),
            ))
        }
        (Some(_), SettingValue::Int(_)) | (None, SettingValue::Flag(_)) => Ok(()),
        _ => Err(AppError::bad_input(property.field(), "has the wrong type")),
    }
}

/// A broken cross-field rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// What is wrong, with the values, e.g. `idle timeout 100 > absolute timeout 60`.
    pub text: String,
    /// The properties whose values take part, most to blame first.
    pub properties: Vec<Property>,
}

/// The cross-field rules `settings` break: the idle timeout must not exceed
/// the absolute timeout, and the warning must be below the idle timeout.
/// In shared-device mode the timeouts are the shared-device ones.
pub(crate) fn violations(settings: &EffectiveSettings) -> Vec<Violation> {
    let (idle, absolute) = if settings.is_shared_device_mode {
        (
            Property::SharedDeviceIdleTimeoutMinutes,
            Property::SharedDeviceAbsoluteTimeoutMinutes,
        )
    } else {
        (Property::IdleTimeoutMinutes, Property::AbsoluteTimeoutMinutes)
    };
    let mut found = Vec::new();
    if settings.idle_timeout_minutes > settings.absolute_timeout_minutes {
        found.push(Violation {
            text: format!(
                "idle timeout {} > absolute timeout {}",
                settings.idle_timeout_minutes, settings.absolute_timeout_minutes
            ),
            properties: vec![
                idle,
                absolute,
                Property::IdleTimeoutMinutes,
                Property::AbsoluteTimeoutMinutes,
                Property::IsSharedDeviceMode,
            ],
        });
    }
    if settings.session_warning_minutes >= settings.idle_timeout_minutes {
        found.push(Violation {
            text: format!(
                "session warning {} >= idle timeout {}",
                settings.session_warning_minutes, settings.idle_timeout_minutes
            ),
            properties: vec![
                Property::SessionWarningMinutes,
                idle,
                Property::IdleTimeoutMinutes,
                Property::IsSharedDeviceMode,
            ],
        });
    }
    found
}

/// The effective settings of one scope, named for error messages, e.g.
/// `School Lincoln (0193…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The scope's name.
    pub label: String,
    /// Its effective settings.
    pub settings: EffectiveSettings,
}

/// Fails with `BAD_USER_INPUT` when a scope in `after` breaks a rule it did
/// not already break (identically) in `before`. The error names the changed
/// property most to blame and the scope that would break.
pub(crate) fn reject_new_violations(
    before: &[Checked],
    after: &[Checked],
    changed: &[Property],
) -> AppResult<()> {
    let known: Vec<String> = before
        .iter()
        .flat_map(|checked| {
            violations(&checked.settings)
                .into_iter()
                .map(|violation| format!("{}: {}", checked.label, violation.text))
        })
        .collect();
    for checked in after {
        for violation in violations(&checked.settings) {
            let text = format!("{}: {}", checked.label, violation.text);
            if known.contains(&text) {
                continue;
            }
            let blamed = violation
                .properties
                .iter()
                .find(|property| changed.contains(property))
                .or_else(|| changed.first())
                .copied()
                .unwrap_or(violation.properties[0]);
            return Err(AppError::bad_input(
                blamed.field(),
                format!("this change would make {text}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle: i32, absolute: i32, warning: i32) -> EffectiveSettings {
        EffectiveSettings {
            idle_timeout_minutes: idle,
            absolute_timeout_minutes: absolute,
            max_concurrent_sessions: 5,
            invalidate_all_sessions_on_login: false,
            session_warning_minutes: warning,
            is_shared_device_mode: false,
        }
    }

    #[test]
    fn ranges_are_inclusive() {
        assert!(check_range(Property::IdleTimeoutMinutes, SettingValue::Int(5)).is_ok());
        assert!(check_range(Property::IdleTimeoutMinutes, SettingValue::Int(120)).is_ok());
        assert!(check_range(Property::IdleTimeoutMinutes, SettingValue::Int(4)).is_err());
        assert!(check_range(Property::IdleTimeoutMinutes, SettingValue::Int(121)).is_err());
    }

    #[test]
    fn the_cross_field_rules_hold_on_the_effective_values() {
        assert!(violations(&settings(30, 480, 2)).is_empty());
        assert!(violations(&settings(60, 60, 59)).is_empty());
        assert_eq!(
            violations(&settings(100, 60, 2))[0].text,
            "idle timeout 100 > absolute timeout 60"
        );
        assert_eq!(
            violations(&settings(10, 60, 10))[0].text,
            "session warning 10 >= idle timeout 10"
        );
    }

    #[test]
    fn only_new_violations_are_rejected_and_the_changed_field_is_blamed() {
        let scope = |settings| Checked {
            label: "School X (1)".to_owned(),
            settings,
        };
        let broken = [scope(settings(100, 60, 2))];
        assert!(reject_new_violations(&broken, &broken, &[Property::MaxConcurrentSessions]).is_ok());
        let error = reject_new_violations(
            &[scope(settings(30, 60, 2))],
            &broken,
            &[Property::AbsoluteTimeoutMinutes],
        );
        match error {
            Err(AppError::BadUserInput { field, message }) => {
                assert_eq!(field, "absoluteTimeoutMinutes");
                assert_eq!(
                    message,
                    "this change would make School X (1): idle timeout 100 > absolute timeout 60"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
