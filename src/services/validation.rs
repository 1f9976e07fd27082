//! Input checks shared by every domain.

use crate::error::{AppError, AppResult};

/// Trims `value` and checks that it has between 1 and `max_chars`
/// characters, none of them a control character (a name is shown to
/// people, and a line break or an escape sequence in it misleads them).
pub(crate) fn required_name(field: &str, value: &str, max_chars: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "must not contain control characters (line breaks, tabs, escapes)",
        ));
    }
    let length = trimmed.chars().count();
    if length > max_chars {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {max_chars} characters (got {length})"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            required_name("name", "  Study  ", 10).ok(),
            Some("Study".to_owned())
        );
        assert!(required_name("name", "   ", 10).is_err());
        assert!(required_name("name", &"x".repeat(11), 10).is_err());
        assert!(required_name("name", &"é".repeat(10), 10).is_ok());
        assert!(required_name("name", "Study\nhour", 20).is_err());
        assert!(required_name("name", "Study\u{1b}[31m", 20).is_err());
    }
}
